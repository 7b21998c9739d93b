"""The package's layering, read from the source (no imports executed, no JVM).

- ``methods/`` never imports ``stages/``, ``reports/`` or the CLI, and one
  ``methods/`` subpackage never imports another's modules (the shared numpy LD
  kernels, ``methods/ld_local.py``, are for all of them);
- ``core/``, ``formats/`` and ``engine/`` import no stage, method or report;
- only ``engine/switch.py`` decides between the engines (``runs_locally``, which
  asks the running Spark context, is defined and called nowhere else);
- there is no import circle between gwas_prs modules, counting the imports inside
  functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "gwas_prs"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        found[module_name(path)] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """gwas_prs modules imported by ``path`` (module level and inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name.startswith("gwas_prs") and name != "gwas_prs":
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, known) - {name} for name, path in found.items()}


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_methods_import_no_stage_report_or_cli() -> None:
    bad = [
        (m, i)
        for m, imported in graph().items()
        if layer(m) == "methods"
        for i in imported
        if layer(i) in ("stages", "reports", "cli", "dataproc")
    ]
    assert bad == []


def test_methods_subpackages_do_not_import_each_other() -> None:
    def subpackage(name: str) -> str | None:
        parts = name.split(".")
        return parts[2] if len(parts) > 3 and parts[1] == "methods" else None

    bad = [
        (m, i)
        for m, imported in graph().items()
        if subpackage(m)
        for i in imported
        if subpackage(i) and subpackage(i) != subpackage(m)
    ]
    assert bad == []


def test_foundation_layers_import_nothing_above_them() -> None:
    bad = [
        (m, i)
        for m, imported in graph().items()
        if layer(m) in ("core", "formats", "engine")
        for i in imported
        if layer(i) in ("methods", "stages", "reports", "cli", "dataproc")
    ]
    assert bad == []


def test_the_engine_is_chosen_in_one_module() -> None:
    def decides(text: str) -> bool:
        return "runs_locally" in text or "spark_context().master" in text

    callers = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if decides(path.read_text(encoding="utf-8"))
    )
    assert callers == ["gwas_prs.engine.switch"]


def test_no_import_circles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """The import reader sees a lazy import inside a function."""
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from gwas_prs.stages.qc import run_qc\n")
    assert imports_of(source, {"gwas_prs.stages.qc"}) == {"gwas_prs.stages.qc"}
