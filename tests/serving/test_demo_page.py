"""The demo page in headless Chromium (Debian's package, over the DevTools protocol): it loads
with no external resources and no console errors, and the list it renders for a user equals
the API's answer. A screenshot is written to the test's tmp directory."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
from cdp import _WebSocket, find_chromium

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(find_chromium() is None, reason="chromium not installed (make system-deps)"),
]


class Browser:
    """One headless Chromium page driven over CDP: navigate, evaluate, screenshot, errors."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="zenrec-chromium-")
        exe = find_chromium()
        assert exe
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={self.profile}",
                "--window-size=1200,900",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        port = None
        deadline = time.time() + timeout
        assert self.proc.stderr is not None
        while time.time() < deadline and port is None:
            line = self.proc.stderr.readline()
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
            elif not line and self.proc.poll() is not None:
                raise RuntimeError("chromium exited")
        assert port, "chromium did not report a DevTools port"
        targets = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read()
        )
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = _WebSocket(page["webSocketDebuggerUrl"], timeout=timeout)
        self.events: list[dict[str, Any]] = []
        self._id = 0
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        deadline = time.time() + self.timeout
        while time.time() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == "Page.loadEventFired":
                return
        raise AssertionError("page did not load")

    def eval(self, expr: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise AssertionError(res["exceptionDetails"])
        return res["result"].get("value")

    def wait_for(self, expr: str, timeout: float = 20.0) -> Any:
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.eval(expr)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expr}")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')}")
            elif m == "Network.loadingFailed":
                out.append(f"load failed: {p.get('errorText')}")
        return out

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


RENDERED = (
    "JSON.stringify(Array.from(document.querySelectorAll('#recs li')).map(li => li.dataset.item))"
)


def test_demo_page_renders_the_api_answer(server, tmp_path):
    browser = Browser()
    try:
        browser.navigate(server.url + "/")
        browser.wait_for("document.getElementById('model').textContent.includes('version')")
        # a known user
        browser.eval(
            "document.getElementById('user').value = '196'; "
            "document.getElementById('k').value = '8';"
            "document.getElementById('form').requestSubmit(); true"
        )
        browser.wait_for("document.body.dataset.ready === '1'")
        shown = json.loads(browser.eval(RENDERED))
        api = httpx.post(server.url + "/v1/recommend", json={"user_id": 196, "k": 8}).json()
        assert shown == [str(it["item_id"]) for it in api["items"]] and len(shown) == 8
        titles = browser.eval(
            "Array.from(document.querySelectorAll('#recs li .title')).map(e => e.textContent)"
        )
        assert titles == [it["title"] for it in api["items"]]
        browser.screenshot(tmp_path / "demo-user.png")
        # a history built by title search, for a visitor
        browser.eval(
            "document.body.dataset.ready = ''; document.getElementById('user').value = '';"
            "const s = document.getElementById('search'); s.value = 'star wars';"
            "s.dispatchEvent(new Event('input')); true"
        )
        browser.wait_for("document.querySelectorAll('#suggest li').length > 0")
        browser.eval(
            "document.querySelector('#suggest li').click(); "
            "document.getElementById('form').requestSubmit(); true"
        )
        browser.wait_for("document.body.dataset.ready === '1'")
        shown = json.loads(browser.eval(RENDERED))
        status = browser.eval("document.getElementById('status').textContent")
        browser.screenshot(tmp_path / "demo-history.png")
        errors, requests = browser.errors(), browser.requests()
    finally:
        browser.close()
    star_wars = httpx.get(server.url + "/v1/items", params={"q": "star wars", "limit": 8}).json()[
        "items"
    ][0]
    api = httpx.post(
        server.url + "/v1/recommend", json={"recent_items": [star_wars["item_id"]], "k": 8}
    ).json()
    assert api["fallback"] == "history" and "history" in status
    assert shown == [str(it["item_id"]) for it in api["items"]]
    assert errors == []
    assert all(u.startswith(server.url) for u in requests), requests  # no external resources
    for name in ("demo-user.png", "demo-history.png"):
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
