"""The leaderboard page in a real headless Chromium (Debian's `chromium` package).

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe): standard
library only, no chromedriver, no selenium, no port, nothing reachable from outside.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from lusebench.leaderboard import build_leaderboard
from lusebench.testing.results import write_fake_results

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium)"
)
# A guard against a wedged browser, not a performance limit.
_STUCK_S = 60.0


class _DevTools:
    """Minimal DevTools client: NUL-separated JSON over fds 3 (commands) and 4 (replies, events)."""

    def __init__(self, user_data_dir: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds() -> None:  # runs in the child: Chromium expects the pipe on fds 3 and 4
            cmd, out = os.dup(to_chrome_r), os.dup(from_chrome_w)  # above 4, so dup2 cannot clobber
            os.dup2(cmd, 3)
            os.dup2(out, 4)

        self.process = subprocess.Popen(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "about:blank",
            ],
            preexec_fn=wire_fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def _message(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_chrome], [], [], _STUCK_S)
            chunk = os.read(self._from_chrome, 1 << 16) if ready else b""
            if not chunk:
                raise RuntimeError("chromium stopped answering")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not browser:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, browser=True)[
            "sessionId"
        ]
        self.send("Network.enable")
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + _STUCK_S
        while self.js("document.readyState") != "complete" or self.js("location.href") != url:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not load")
            time.sleep(0.05)

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close", browser=True)
            self.process.wait(timeout=_STUCK_S)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._to_chrome)
            os.close(self._from_chrome)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    results = root / "results"
    write_fake_results(results / "strong", system="strong", si_snri_db=12.0, doa_mae_deg=30.0, figures=["fig2"])
    write_fake_results(results / "weak", system="weak", si_snri_db=6.0, doa_mae_deg=10.0)
    write_fake_results(results / "middle", system="middle", si_snri_db=9.0, doa_mae_deg=20.0)
    write_fake_results(results / "locator", system="locator", tasks=["localization"], doa_mae_deg=5.0)
    write_fake_results(results / "elsewhere", system="elsewhere", fingerprint="ab" * 32)
    board = build_leaderboard([results], root / "site")
    browser = _DevTools(root / "chromium-profile")
    try:
        browser.open(board.html.resolve().as_uri())
        yield browser
    finally:
        browser.close()


def _column(browser: _DevTools, table: str, index: int) -> list[str]:
    rows = json.dumps(f"{table} tbody tr")
    return browser.js(f"Array.from(document.querySelectorAll({rows})).map(r => r.cells[{index}].textContent)")


def _click(browser: _DevTools, table: str, header: str) -> None:
    headers = json.dumps(f"{table} th")
    label = json.dumps(header)
    browser.js(f"Array.from(document.querySelectorAll({headers})).find(h => h.textContent === {label}).click()")


def test_tables_and_paper_rows_are_shown(page):
    assert page.js("document.querySelectorAll('table.leaderboard.paper').length") == 2
    assert page.js("document.querySelectorAll('table.leaderboard.measured').length") == 2
    assert page.js("Array.from(document.querySelectorAll('table')).every(t => t.offsetHeight > 0)")
    paper = "table.leaderboard.paper[data-num-sources='2']"
    assert _column(page, paper, 1) == ["T-HTDemucs", "MLP-GCC", "LuSeeL†", "LuSeeL°", "LuSeeL"]
    assert _column(page, paper, 5) == ["7.7", "-", "17.6", "20.1", "20.3"]
    labels = page.js("Array.from(document.querySelectorAll('p.paper-label')).map(p => p.innerText)")
    assert labels == ["reported in the paper (AudioCaps, 4x A800)"] * 2
    # Best values are visibly bold.
    assert page.js(f"getComputedStyle(document.querySelector({json.dumps(paper + ' td.best')})).fontWeight") == "700"


def test_test_sets_are_never_ranked_together(page):
    systems = page.js(
        "Array.from(document.querySelectorAll('table.measured')).map(t => "
        "Array.from(t.tBodies[0].rows).map(r => r.cells[1].textContent))"
    )
    assert sorted(map(sorted, systems)) == [["elsewhere"], ["locator", "middle", "strong", "weak"]]


def test_sorting_by_a_column_works(page):
    table = "table.measured:not(:has(td[data-sort='elsewhere']))"
    assert _column(page, table, 1) == ["strong", "middle", "weak", "locator"]  # ranked by SI-SNRi
    _click(page, table, "SI-SNRi (dB)")
    assert _column(page, table, 1) == ["weak", "middle", "strong", "locator"]  # "-" stays last
    _click(page, table, "SI-SNRi (dB)")
    assert _column(page, table, 1) == ["strong", "middle", "weak", "locator"]
    _click(page, table, "MAE (deg)")
    assert _column(page, table, 1) == ["locator", "weak", "middle", "strong"]
    _click(page, table, "System")
    assert _column(page, table, 1) == ["locator", "middle", "strong", "weak"]
    assert page.js(f"document.querySelector({json.dumps(table + ' th[aria-sort]')}).textContent") == "System"


def test_page_loads_nothing_from_the_network(page):
    urls = [e["params"]["request"]["url"] for e in page.events if e.get("method") == "Network.requestWillBeSent"]
    assert urls and all(url.startswith(("file://", "data:")) for url in urls)
    # The figure is a file beside the page, fetched only when its provenance cell is opened.
    assert page.js("Array.from(document.images).map(i => [i.loading, i.getAttribute('src').split('/')[0]])") == [
        ["lazy", "figures"]
    ]
