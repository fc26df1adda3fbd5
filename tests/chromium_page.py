"""Open a page in headless Chromium over the DevTools protocol (``--remote-debugging-pipe``).

Standard library only: Chromium reads commands on fd 3 and writes replies and events on
fd 4, each a JSON message ended by a NUL byte. :func:`inspect_page` loads a file, collects
console errors, uncaught exceptions, failed loads and error log entries, evaluates a
JavaScript expression and can save a screenshot. Also a script, for looking at a report::

    python tests/chromium_page.py report.html shot.png
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
"""Executable names tried in order ($SPARSEDP_CHROMIUM overrides)."""

INSTALL_HINT = "install it with `apt-get install -y chromium` (Debian) or set $SPARSEDP_CHROMIUM"


def find_browser() -> str | None:
    """Path of a Chromium-family browser, or None."""
    env = os.environ.get("SPARSEDP_CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


@dataclass
class PageReport:
    """What the page did: problems found while loading, and the evaluated value."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_loads: list[str] = field(default_factory=list)
    log_errors: list[str] = field(default_factory=list)
    value: Any = None

    @property
    def problems(self) -> list[str]:
        """Every error, in one list (empty for a clean page)."""
        return [*self.console_errors, *self.exceptions, *self.failed_loads, *self.log_errors]


def _above_four(fd: int) -> int:
    """``fd`` moved to a number above 4, so the shell's ``3<&`` / ``4>&`` cannot clobber it."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class _Pipe:
    """Commands and replies over Chromium's debugging pipe."""

    def __init__(self, browser: str, profile: Path) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        cmd_r, res_w = _above_four(cmd_r), _above_four(res_w)
        args = [
            "--headless",
            "--no-sandbox",  # CI containers run as root
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--mute-audio",
            f"--user-data-dir={profile}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # bash (dash allows only one-digit fds) moves our pipe ends to Chromium's fds 3 and 4.
        script = f'exec "$0" "$@" 3<&{cmd_r} 4>&{res_w} {cmd_r}<&- {res_w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", script, browser, *args],
            pass_fds=(cmd_r, res_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._next_id = 0
        self._messages: queue.Queue[dict | None] = queue.Queue()
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._res_r, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for raw in messages:
                    self._messages.put(json.loads(raw))
        self._messages.put(None)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None,
             deadline: float) -> dict:
        """Send one command; return its result (events meanwhile go to ``events``)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._get(deadline, method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"Chromium: {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, *, deadline: float) -> dict:
        """The first event named ``method`` (earlier events are kept)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._get(deadline, method)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _get(self, deadline: float, waiting_for: str) -> dict:
        try:
            message = self._messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"Chromium: no {waiting_for} before the deadline") from None
        if message is None:
            raise RuntimeError(f"Chromium exited (code {self.proc.poll()}) while waiting "
                               f"for {waiting_for}")
        return message

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._cmd_w)  # Chromium exits when its command pipe closes
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _describe(events: list[dict], report: PageReport) -> None:
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            report.console_errors.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            report.exceptions.append(f"exception: {text}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            report.failed_loads.append(f"load failed: {params.get('errorText')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            report.log_errors.append(f"log: {entry.get('text')} ({entry.get('url', '')})")


def inspect_page(
    page: Path,
    expression: str = "null",
    *,
    screenshot: Path | None = None,
    width: int = 1400,
    height: int = 1000,
    timeout: float = 30.0,
) -> PageReport:
    """Load ``page`` in headless Chromium; return its errors and ``expression``'s value.

    ``expression`` may return a promise (it is awaited) and must return JSON-able data.
    ``screenshot`` saves the whole page as PNG. Raises FileNotFoundError without a browser.
    """
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found ({', '.join(BROWSERS)}): {INSTALL_HINT}")
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="sparsedp-chromium-") as profile:
        pipe = _Pipe(browser, Path(profile))
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"}, deadline=deadline)
            session = pipe.send(
                "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
                deadline=deadline,
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.send(f"{domain}.enable", session=session, deadline=deadline)
            pipe.send("Emulation.setScrollbarsHidden", {"hidden": True}, session=session,
                      deadline=deadline)
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1,
                       "mobile": False}, session=session, deadline=deadline)
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session,
                      deadline=deadline)
            pipe.wait_for("Page.loadEventFired", deadline=deadline)
            result = pipe.send(
                "Runtime.evaluate",
                {"expression": expression, "awaitPromise": True, "returnByValue": True},
                session=session, deadline=deadline,
            )
            report = PageReport()
            if "exceptionDetails" in result:
                details = result["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                raise RuntimeError(f"the check's own JavaScript failed: {text}")
            report.value = result.get("result", {}).get("value")
            if screenshot is not None:
                shot = pipe.send("Page.captureScreenshot",
                                 {"format": "png", "captureBeyondViewport": True},
                                 session=session, deadline=deadline)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            _describe(pipe.events, report)
            return report
        finally:
            pipe.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/chromium_page.py PAGE.html SCREENSHOT.png")
    found = inspect_page(Path(sys.argv[1]), screenshot=Path(sys.argv[2]))
    print("\n".join(found.problems) or "no errors")
