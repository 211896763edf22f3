"""Render a static HTML page in headless Chromium and report on its images (a test helper, not a test).

The driver is the Chrome DevTools protocol over ``--remote-debugging-pipe``: Chromium reads
NUL-terminated JSON commands on its fd 3 and writes replies and events on its fd 4. It needs nothing
but the browser and the standard library -- no Python package, no chromedriver, no websocket, no port,
so it works offline and cannot fall out of step with a driver version.

    from tests.browser import chromium_or_skip, render_report
    chromium_or_skip()                      # skip (fail under CI=...) when Chromium is missing
    info = render_report(tmp_path / "report.html", tmp_path / "shot.png")
    assert info["images"] == info["images_loaded"] and not info["broken"]
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

#: where Debian's ``chromium`` package puts the browser; ``$CHROMIUM`` overrides it
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: offline-safe flags: no sandbox (root in a container), no GPU, no network side traffic, no first run
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-pipe")

# what the page reports about itself once loaded; an image is loaded when complete with a width
_PAGE_PROBE = """(() => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0);
  return {title: document.title, images: imgs.length, images_loaded: ok.length,
          broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
          width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight};
})()"""


def chromium_path() -> str | None:
    """The Chromium executable (``$CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on the
    ``PATH``), or ``None`` when there is none."""
    for candidate in (os.environ.get("CHROMIUM"), DEFAULT_CHROMIUM, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def chromium_or_skip() -> str:
    """The Chromium path for a test that needs the browser: skips the test when it is missing, but fails
    it when ``CI`` is set (CI installs Chromium, so its absence there is a broken setup)."""
    import pytest

    path = chromium_path()
    if path is None:
        reason = f"headless Chromium not found at {DEFAULT_CHROMIUM} ($CHROMIUM); apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return path


class _Pipe:
    """A DevTools-protocol connection over Chromium's debugging pipe: :meth:`call` sends a command and
    waits for its reply, keeping the events that arrive meanwhile for :meth:`wait_event`."""

    def __init__(self, to_browser: int, from_browser: int, deadline: float):
        self._out, self._in, self._deadline = to_browser, from_browser, deadline
        self._buf, self._events, self._next_id = b"", [], 0

    def _read_message(self) -> dict:
        while b"\0" not in self._buf:
            readable, _, _ = select.select([self._in], [], [], max(0.0, self._deadline - time.monotonic()))
            if not readable:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the debugging pipe (did it start?)")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict:
        while True:
            for i, event in enumerate(self._events):
                if event["method"] == method and event.get("sessionId") == session:
                    return self._events.pop(i)
            msg = self._read_message()
            if "method" in msg:
                self._events.append(msg)


def _start(chromium: str, profile: str) -> tuple[subprocess.Popen, int, int]:
    """Start Chromium with its debugging pipe on fds 3 (commands in) and 4 (replies out); returns the
    process and our ends of the two pipes."""
    cmd_r, cmd_w = os.pipe()  # we write commands, the browser reads them on fd 3
    ans_r, ans_w = os.pipe()  # the browser writes on fd 4, we read

    def child_fds():  # in the child between fork and exec; via fds >= 10 so 3 and 4 cannot collide
        high_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD_CLOEXEC, 10)
        high_w = fcntl.fcntl(ans_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.dup2(high_r, 3)  # dup2 leaves 3 and 4 inheritable, everything else is close-on-exec
        os.dup2(high_w, 4)

    # close_fds=False: subprocess closes fds after preexec_fn, which would close 3 and 4 again
    proc = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            close_fds=False, preexec_fn=child_fds)
    os.close(cmd_r)
    os.close(ans_w)
    return proc, cmd_w, ans_r


def render_report(html_path: str | Path, screenshot_path: str | Path, *, width: int = 1280,
                  timeout: float = 60.0, chromium: str | None = None) -> dict:
    """Open ``html_path`` in headless Chromium, wait for its load event, and write a full-page PNG
    screenshot to ``screenshot_path``.

    Args:
        html_path: a local HTML file (opened as ``file://``, so relative image paths resolve).
        screenshot_path: where the PNG goes (folders created).
        width: viewport width in CSS pixels; the height is the page's full scroll height.
        timeout: seconds for the whole visit before :class:`TimeoutError`.
        chromium: the browser executable (default :func:`chromium_path`).

    Returns:
        ``{"title": str, "images": int, "images_loaded": int, "broken": [src, ...], "width": int,
        "height": int, "screenshot": Path}``; an image is loaded when ``complete && naturalWidth > 0``,
        ``broken`` lists the ``src`` attributes of the others, width/height are the page's size in CSS px.
    """
    chromium = chromium or chromium_path()
    if chromium is None:
        raise FileNotFoundError(f"no Chromium at {DEFAULT_CHROMIUM}; apt-get install -y chromium")
    url = Path(html_path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc, to_browser, from_browser = _start(chromium, profile)
        try:
            cdp = _Pipe(to_browser, from_browser, time.monotonic() + timeout)
            target = cdp.call("Target.createTarget", url="about:blank")["targetId"]
            page = cdp.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            cdp.call("Page.enable", page)
            cdp.call("Emulation.setDeviceMetricsOverride", page, width=width, height=800,
                     deviceScaleFactor=1, mobile=False)
            error = cdp.call("Page.navigate", page, url=url).get("errorText")
            if error:
                raise RuntimeError(f"Chromium could not open {url}: {error}")
            cdp.wait_event("Page.loadEventFired", page)
            info = cdp.call("Runtime.evaluate", page, expression=_PAGE_PROBE, returnByValue=True)
            info = info["result"]["value"]
            shot = cdp.call("Page.captureScreenshot", page, format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": info["width"], "height": info["height"], "scale": 1})
            screenshot_path = Path(screenshot_path)
            screenshot_path.parent.mkdir(parents=True, exist_ok=True)
            screenshot_path.write_bytes(base64.b64decode(shot["data"]))
            try:
                cdp.call("Browser.close")
            except RuntimeError:  # the pipe may close before the reply arrives
                pass
        finally:
            os.close(to_browser)
            os.close(from_browser)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {**info, "screenshot": screenshot_path}
