"""In headless Chromium: log in at /login, land on the report list, filter it, reach it from the chat page, log out.

The list's columns must keep words whole: each alert name, target, time and status renders on one line even next
to long summaries in a narrow window. A screenshot goes to ``artifacts/``.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reports.models import Report, ReportStatus
from reports.store.sqlite import SqliteStore
from tests.support.ask import served
from tests.support.browser import ARTIFACTS, devtools_page
from tests.support.sample_reports import sample_alert
from webhook.app import create_app

pytestmark = pytest.mark.slow

TOKEN = "browser-login-token-0001"
LONG_SUMMARY = (
    "Memory available on the node fell below five percent after the nightly backup started three snapshot "
    "jobs at once; the OOM killer ended the transcoder of the media container twice within ten minutes."
)
REPORTS = [
    ("KubePersistentVolumeFillingUp", {"instance": "pve1:9100", "severity": "critical"}),
    ("ProxmoxGuestMemoryPressureCritical", {"guest": "jellyfin-transcoder", "severity": "warning"}),
    ("HostHighCpuLoad", {"node": "pve2", "severity": "critical"}),
]

# for each cell of a column: on how many lines its text is laid out (text nodes only: a pill's border box has a
# top of its own)
LINES = """(column) => Array.from(document.querySelectorAll('table.reports tr.report')).map((row) => {
  const walker = document.createTreeWalker(row.cells[column], NodeFilter.SHOW_TEXT);
  const tops = new Set();
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    const range = document.createRange(); range.selectNodeContents(node);
    for (const rect of range.getClientRects()) tops.add(Math.round(rect.top));
  }
  return tops.size; })"""


async def _store_reports(database_url: str) -> None:
    store = SqliteStore(database_url.removeprefix("sqlite:///"))
    await store.init()
    now = datetime.now(UTC)
    for n, (name, labels) in enumerate(REPORTS):
        alert = sample_alert(
            fingerprint=f"fp-{n}",
            alertname=name,
            labels={"alertname": name, **labels},
            starts_at=now - timedelta(hours=n),
        )
        await store.save(
            Report(id=alert.occurrence_key, alert=alert, status=ReportStatus.triaged, summary=LONG_SUMMARY)
        )
    await store.close()


async def test_login_leads_to_a_filterable_report_list_with_whole_words(tmp_path: Path, make_settings: Any) -> None:
    settings = make_settings(api={"api_token": TOKEN})
    await _store_reports(settings.storage.database_url)
    app = create_app(settings)

    async with served(app) as base, devtools_page(tmp_path, window="900,900") as page:
        await page.call("Page.navigate", url=f"{base}/reports")
        await page.wait_for("location.pathname === '/login' && !!document.getElementById('token')")
        assert await page.js("location.search") == "?next=/reports"
        await page.js(
            f"document.getElementById('token').value = {json.dumps(TOKEN)}; document.querySelector('form').submit(); true"
        )
        await page.wait_for("location.pathname === '/reports' && document.querySelectorAll('table.reports tr').length")
        names = await page.js("Array.from(document.querySelectorAll('td.name a')).map((a) => a.textContent)")
        cookie_visible_to_scripts = await page.js("document.cookie")
        lines = {column: await page.js(f"({LINES})({column})") for column in (0, 1, 2, 3, 4)}
        summary_width = await page.js(
            "document.querySelector('tr.summary-row td[colspan]').getBoundingClientRect().width"
        )
        table_fits = await page.js(
            "document.querySelector('.scroll').scrollWidth <= document.querySelector('.scroll').clientWidth"
        )
        shot = await page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)

        await page.js("document.querySelector('input[name=target]').value = 'pve1'; true")
        await page.js("document.getElementById('filters').requestSubmit(); true")
        await page.wait_for("location.search.includes('target=pve1') && document.readyState === 'complete'")
        filtered = await page.js("Array.from(document.querySelectorAll('td.name a')).map((a) => a.textContent)")

        await page.call("Page.navigate", url=f"{base}/")
        await page.wait_for("document.querySelectorAll('#reports li').length === 3")
        chat_token_panel_hidden = await page.js("document.getElementById('token-panel').hidden")
        all_reports = await page.js("document.getElementById('all-reports').getAttribute('href')")
        # a question sent with the cookie (no bearer) passes the same-site check; no model is configured here
        await page.js(
            "document.getElementById('question').value = 'why?'; document.getElementById('send').click(); true"
        )
        chat_error = await page.wait_for(
            "!document.getElementById('error').hidden && document.getElementById('error').textContent"
        )

        await page.call("Page.navigate", url=f"{base}/reports")
        await page.wait_for("location.pathname === '/reports' && !!document.querySelector('form.inline button')")
        await page.js("document.querySelector('form.inline button').click(); true")
        await page.wait_for("location.pathname === '/login'")
        await page.call("Page.navigate", url=f"{base}/reports")
        await page.wait_for("location.pathname === '/login' && !!document.getElementById('token')")

    assert names == [name for name, _ in REPORTS]
    assert cookie_visible_to_scripts == ""  # HttpOnly
    assert all(count == 1 for counts in lines.values() for count in counts), lines
    # the summary reads across the columns instead of a word a line, and a 900 px window needs no sideways scroll
    assert summary_width > 400 and table_fits, (summary_width, table_fits)
    assert filtered == ["KubePersistentVolumeFillingUp"]
    assert chat_token_panel_hidden is True  # the chat page uses the same login
    assert all_reports == "/reports"
    assert chat_error.startswith("no language model is configured"), chat_error
    ARTIFACTS.mkdir(exist_ok=True)
    png = base64.b64decode(shot["data"])
    (ARTIFACTS / "report-list.png").write_bytes(png)
    assert png.startswith(b"\x89PNG")
