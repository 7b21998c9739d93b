"""Headless Chromium for the rendering tests (Debian ``chromium``; no Python package).

:func:`render_pages` opens HTML files one after the other in one headless browser with
the network blocked (every http(s) request goes to a dead proxy, every host name fails
to resolve) and, through the Chrome DevTools protocol on a pipe
(``--remote-debugging-pipe``), waits until BokehJS has drawn, then counts the bokeh
figures that rendered: a ``bk-Figure`` element (bokeh 3 draws into shadow roots, which
``--dump-dom`` does not show) with a ``canvas`` of non-zero size inside. It records the
requests a page tried that were not ``file:``/``data:`` (a CDN script), uncaught
JavaScript errors, and can save a full-page screenshot.

Used by ``tests/test_report_rendering.py`` and ``tests/test_notebooks.py``; also a small
tool: ``python -m tests.browser OUT_DIR PAGE.html …`` prints the checks and writes
screenshots.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
#: Why the rendering tests skip (None when chromium is installed)
SKIP_REASON = (
    None
    if CHROMIUM
    else "chromium is not installed (apt-get install chromium; .ci/run installs it)"
)

#: ``<script src="http…">`` / ``src="//…"`` and any mention of bokeh's CDN (the notebook
#: loader builds its script URLs in JavaScript, so they are no ``src`` attribute)
_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?((?:https?:)?//[^\"' >]+)", re.I)
_BOKEH_CDN = re.compile(r"https?://cdn\.bokeh\.org[^\"' )\\]*", re.I)
#: A Figure model in a page's document JSON (plain, or escaped inside a JS string)
_FIGURE_MODEL = re.compile(r'\\*"name\\*"\s*:\s*\\*"Figure\\*"')

_COUNT_JS = """
(() => {
  const all = (root, out) => {
    for (const el of root.querySelectorAll('*')) {
      out.push(el);
      if (el.shadowRoot) all(el.shadowRoot, out);
    }
    return out;
  };
  const figures = all(document, []).filter(e => e.classList && e.classList.contains('bk-Figure'));
  const drawn = figures.filter(f => all(f.shadowRoot || f, []).some(
    e => e.tagName === 'CANVAS' && e.width > 0 && e.height > 0));
  return JSON.stringify({figures: figures.length, drawn: drawn.length,
                         bokeh: typeof window.Bokeh !== 'undefined'});
})()
"""


def cdn_script_references(html: str, allowed: Iterable[str] = ()) -> list[str]:
    """Script URLs of ``html`` that load from the network (not in ``allowed``)."""
    allowed_set = set(allowed)
    found = [m.group(1) for m in _SCRIPT_SRC.finditer(html)] + _BOKEH_CDN.findall(html)
    return sorted({url for url in found if url not in allowed_set})


def expected_figures(html: str) -> int:
    """How many bokeh Figure models the page's documents hold."""
    return len(_FIGURE_MODEL.findall(html))


@dataclass
class PageCheck:
    """What one page did in the browser."""

    path: str
    expected: int  # Figure models in the page's documents
    figures: int = 0  # bk-Figure elements after load
    drawn: int = 0  # of which with a drawn canvas
    bokeh_loaded: bool = False
    cdn_scripts: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def problems(self) -> list[str]:
        """Everything wrong with the page, in words (empty when it rendered offline)."""
        out = []
        if self.cdn_scripts:
            out.append(f"references scripts on the network: {self.cdn_scripts}")
        if self.requests:
            out.append(f"made network requests: {self.requests[:5]}")
        if self.expected and not self.bokeh_loaded:
            out.append("BokehJS did not load")
        if self.drawn != self.expected:
            out.append(
                f"{self.drawn} of {self.expected} bokeh figures rendered a canvas "
                f"({self.figures} figure elements)"
            )
        if self.errors:
            out.append(f"JavaScript errors: {self.errors[:3]}")
        return out


class _Pipe:
    """The DevTools protocol over the browser's fds 3 (commands) and 4 (replies)."""

    def __init__(self, to_browser: int, from_browser: int, timeout: float) -> None:
        self.out, self.inp, self.timeout = to_browser, from_browser, timeout
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.inp], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return dict(json.loads(message))

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None
    ) -> Any:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self.receive(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, deadline: float) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self.receive(deadline))


def _start(profile: str, width: int, height: int) -> tuple[subprocess.Popen[bytes], _Pipe]:
    assert CHROMIUM is not None, SKIP_REASON
    to_read, to_browser = os.pipe()  # the browser reads commands on fd 3
    from_browser, to_write = os.pipe()  # and writes replies on fd 4
    for fd in (to_browser, from_browser):
        os.set_inheritable(fd, False)

    def child_fds() -> None:  # runs in the child before exec: fds 3 and 4 as chromium wants
        high_read = fcntl.fcntl(to_read, fcntl.F_DUPFD, 100)
        high_write = fcntl.fcntl(to_write, fcntl.F_DUPFD, 100)
        os.dup2(high_read, 3)
        os.dup2(high_write, 4)

    process = subprocess.Popen(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--remote-debugging-pipe", f"--user-data-dir={profile}", "--no-first-run",
            "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
            "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={width},{height}",
            "--hide-scrollbars", "about:blank",
        ],
        pass_fds=(3, 4, to_read, to_write),
        preexec_fn=child_fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(to_read)
    os.close(to_write)
    return process, _Pipe(to_browser, from_browser, timeout=60)


def render_pages(
    paths: Sequence[str | Path],
    *,
    screenshot_dir: str | Path | None = None,
    names: Sequence[str] | None = None,
    allowed_scripts: Iterable[str] = (),
    settle_s: float = 20.0,
    width: int = 1400,
    height: int = 1000,
) -> list[PageCheck]:
    """Load each page (``file://``, network blocked) and check it (:class:`PageCheck`);
    waits up to ``settle_s`` per page for every figure to draw. ``allowed_scripts``
    are network script URLs a page may reference without failing (an nbconvert
    template's own require.js/MathJax, which offline simply do not load). Screenshots
    are ``screenshot_dir/NAME.png`` (``names``, default: the last three path parts)."""
    allowed = list(allowed_scripts)
    results: list[PageCheck] = []
    with tempfile.TemporaryDirectory(prefix="gwas-prs-chromium-") as profile:
        process, pipe = _start(profile, width, height)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Page", "Network", "Runtime"):
                pipe.call(f"{domain}.enable", session=session)
            for k, path in enumerate(paths):
                name = names[k] if names else "_".join(Path(path).with_suffix("").parts[-3:])
                shot = Path(screenshot_dir) / f"{name}.png" if screenshot_dir else None
                results.append(_check(pipe, session, Path(path), allowed, settle_s, shot))
            pipe.call("Browser.close")
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(pipe.out)
            os.close(pipe.inp)
    return results


def _check(
    pipe: _Pipe,
    session: str,
    path: Path,
    allowed: list[str],
    settle_s: float,
    screenshot: Path | None,
) -> PageCheck:
    started = time.monotonic()
    html = path.read_text(encoding="utf-8")
    check = PageCheck(
        str(path), expected_figures(html), cdn_scripts=cdn_script_references(html, allowed)
    )
    pipe.events.clear()
    pipe.call("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
    pipe.wait_for("Page.loadEventFired", time.monotonic() + 60)
    deadline = time.monotonic() + settle_s
    while True:
        value = pipe.call(
            "Runtime.evaluate", {"expression": _COUNT_JS, "returnByValue": True}, session=session
        )["result"]["value"]
        counts = json.loads(value)
        check.figures, check.drawn, check.bokeh_loaded = (
            counts["figures"], counts["drawn"], counts["bokeh"],
        )  # fmt: skip
        if check.drawn >= check.expected or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    for event in pipe.events:
        if event.get("method") == "Network.requestWillBeSent":
            url = event["params"]["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:")) and url not in allowed:
                check.requests.append(url)
        elif event.get("method") == "Runtime.exceptionThrown":
            details = event["params"]["exceptionDetails"]
            check.errors.append(str(details.get("exception", {}).get("description") or details))
    if screenshot is not None:
        metrics = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = pipe.call(
            "Page.captureScreenshot",
            {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": metrics["width"],
                         "height": min(metrics["height"], 16000), "scale": 1},
            },
            session=session,
        )  # fmt: skip
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
    check.seconds = round(time.monotonic() - started, 2)
    return check


if __name__ == "__main__":  # python -m tests.browser OUT_DIR PAGE.html …
    for result in render_pages(sys.argv[2:], screenshot_dir=sys.argv[1]):
        print(result.path, result.expected, result.drawn, result.seconds, result.problems())
