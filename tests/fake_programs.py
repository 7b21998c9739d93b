"""Fake ``hailctl``, ``gcloud`` and ``uv`` executables for the Dataproc tests.

:func:`install_fakes` writes small Python scripts into a folder that the test
puts first on ``PATH``. Each fake appends its argv (program name first) as one
JSON line to a record file, then answers according to rules the test sets with
:meth:`FakePrograms.respond`: the first rule whose ``match`` is a prefix of the
arguments decides stdout, stderr and the exit status (default: no output,
status 0). A fake ``uv build --out-dir DIR`` also writes a dummy wheel there.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROGRAMS = ("hailctl", "gcloud", "uv")

_SCRIPT = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
folder = os.path.dirname(os.path.abspath(sys.argv[0]))
with open(os.path.join(folder, "calls.jsonl"), "a") as record:
    record.write(json.dumps([name, *args]) + "\\n")
rules_path = os.path.join(folder, "rules.json")
rules = json.load(open(rules_path)) if os.path.exists(rules_path) else {{}}
if name == "uv" and "--out-dir" in args:
    out = args[args.index("--out-dir") + 1]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, rules.get("uv-wheel-name", "gwas_prs-0.1.0-py3-none-any.whl")), "wb") as wheel:
        wheel.write(b"fake wheel")
for rule in rules.get(name, []):
    if args[: len(rule["match"])] == rule["match"]:
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("exit", 0))
"""


@dataclass
class FakePrograms:
    """The folder of fakes; read what ran, set how they answer."""

    folder: Path

    def calls(self) -> list[list[str]]:
        """Every recorded invocation, in order: ``[program, arg1, …]``."""
        record = self.folder / "calls.jsonl"
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text().splitlines()]

    def respond(
        self, program: str, match: list[str], *, stdout: str = "", stderr: str = "", exit: int = 0
    ) -> None:
        """Make ``program ARGS`` with ``ARGS`` starting with ``match`` answer like this."""
        rules_path = self.folder / "rules.json"
        rules: dict[str, Any] = json.loads(rules_path.read_text()) if rules_path.exists() else {}
        rules.setdefault(program, []).append(
            {"match": match, "stdout": stdout, "stderr": stderr, "exit": exit}
        )
        rules_path.write_text(json.dumps(rules))


def install_fakes(folder: Path) -> FakePrograms:
    """Write the fake executables into ``folder`` (which the caller puts first on PATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in PROGRAMS:
        path = folder / name
        path.write_text(_SCRIPT.format(python=sys.executable))
        path.chmod(0o755)
    return FakePrograms(folder)
