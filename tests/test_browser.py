"""A rendered report opened in headless Chromium, as a stakeholder would open it.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON), so no extra package is needed. The test fails on a
JavaScript exception, a console error, a failed load or any request leaving the machine, and
saves a full-page screenshot (``CRMLAB_SCREENSHOT_DIR`` or pytest's tmp folder).

Skipped only when no Chromium is found (CI installs Debian's ``chromium``).
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

import pytest

pytestmark = pytest.mark.browser

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--remote-debugging-pipe"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


class DevTools:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, exe: str, profile: str):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def _fds():  # child: fd 3 = commands in, fd 4 = replies out
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_fds, pass_fds=(3, 4))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the debugging pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, *, session: bool = True, timeout: float = 30) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline - time.monotonic())
            if reply is None:
                break
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(method)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            e = self._read(deadline - time.monotonic())
            if e is None:
                break
            if e.get("method") == method:
                return e
            self.events.append(e)
        raise TimeoutError(method)

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            e = self._read(deadline - time.monotonic())
            if e is None:
                return
            self.events.append(e)

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


def open_page(url: str, screenshot: Path, width: int = 1200) -> dict:
    """Load ``url`` in headless Chromium; return the problems seen and save a full-page PNG."""
    exe = chromium()
    with tempfile.TemporaryDirectory(prefix="crmlab-chromium-") as profile:
        dt = DevTools(exe, profile)
        try:
            targets = dt.send("Target.getTargets", session=False)["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            dt.session = dt.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                 session=False)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                dt.send(f"{domain}.enable")
            dt.send("Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
            nav = dt.send("Page.navigate", {"url": url})
            dt.wait_for("Page.loadEventFired", timeout=60)
            dt.drain(1.0)  # late console messages and requests
            height = dt.send("Runtime.evaluate", {"expression": "document.documentElement.scrollHeight",
                                                  "returnByValue": True})["result"]["value"]
            dt.send("Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": int(min(height, 16000)), "deviceScaleFactor": 1, "mobile": False})
            shot = dt.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            broken_images = dt.send("Runtime.evaluate", {
                "expression": "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length",
                "returnByValue": True})["result"]["value"]
            headings = dt.send("Runtime.evaluate", {
                "expression": "Array.from(document.querySelectorAll('h1,h2')).map(h => h.innerText)",
                "returnByValue": True})["result"]["value"]
        finally:
            dt.close()
    ev = dt.events
    problems = {
        "navigate_error": nav.get("errorText"),
        "exceptions": [e["params"]["exceptionDetails"].get("text") for e in ev if e.get("method") == "Runtime.exceptionThrown"],
        "console_errors": [e["params"] for e in ev if e.get("method") == "Runtime.consoleAPICalled"
                           and e["params"].get("type") in ("error", "assert")],
        "log_errors": [e["params"]["entry"].get("text") for e in ev if e.get("method") == "Log.entryAdded"
                       and e["params"]["entry"].get("level") == "error"],
        "failed_loads": [e["params"].get("errorText") for e in ev if e.get("method") == "Network.loadingFailed"],
        "remote_requests": [e["params"]["request"]["url"] for e in ev if e.get("method") == "Network.requestWillBeSent"
                            and not e["params"]["request"]["url"].startswith(("file:", "data:", "about:"))],
        "broken_images": broken_images,
    }
    return {"problems": problems, "headings": headings, "height": height}


@pytest.fixture(scope="module")
def rendered_report(tmp_path_factory):
    """The experiment readout rendered in Korean on the bundled Hillstrom data, through the CLI."""
    if chromium() is None:
        pytest.skip("no chromium found (CI installs Debian's chromium)")
    from crmlab.__main__ import main
    out = tmp_path_factory.mktemp("reports")
    code = main(["report", "experiment_readout", "--week", "2026-W47", "--lang", "ko", "--source", "hillstrom",
                 "--out", str(out),
                 "--no-progress"])
    assert code == 0
    return out


def test_report_opens_without_errors(rendered_report, tmp_path):
    shots = Path(os.environ.get("CRMLAB_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page = rendered_report / "2026-W47" / "experiment_readout.html"
    png = shots / "experiment_readout_ko.png"
    seen = open_page(page.resolve().as_uri(), png)
    p = seen["problems"]
    assert p["navigate_error"] is None
    assert p["exceptions"] == [] and p["console_errors"] == [] and p["log_errors"] == []
    assert p["failed_loads"] == [] and p["remote_requests"] == []
    assert p["broken_images"] == 0
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("실험" in h for h in seen["headings"]), seen["headings"]  # Korean report title rendered
    assert seen["height"] > 900  # a real page, not an empty one


def test_index_opens_without_errors(rendered_report, tmp_path):
    seen = open_page((rendered_report / "index.html").resolve().as_uri(), tmp_path / "index.png")
    p = seen["problems"]
    assert p["exceptions"] == [] and p["failed_loads"] == [] and p["remote_requests"] == []
    assert "2026-W47" in seen["headings"]


def test_detects_a_page_error(tmp_path):
    """The checker itself: a page with a script error and a missing image is caught."""
    if chromium() is None:
        pytest.skip("no chromium found")
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><h1>x</h1><img src='missing.png'><script>undefined_fn()</script></body></html>")
    p = open_page(bad.as_uri(), tmp_path / "bad.png")["problems"]
    assert p["exceptions"], p
    assert p["failed_loads"] or p["broken_images"] == 1, p
