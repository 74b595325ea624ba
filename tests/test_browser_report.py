"""A real browser opens a report served by the API under a real uvicorn, through the link an annotation carries.

Headless Chromium loads the signed link, the test reads the rendered DOM (``--dump-dom``) for the visible text,
and a screenshot is saved to ``artifacts/`` for CI.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reports.links import LinkSigner
from reports.models import AlertStatus, AnnotationRef, DeliveryState, Evidence, ReportStatus
from reports.store.sqlite import SqliteStore
from tests.support.browser import ARTIFACTS, require_chromium, run_chromium
from tests.support.procs import free_port, running
from tests.support.sample_reports import START, sample_alert, sample_report
from triage.settings import ApiSettings

pytestmark = pytest.mark.slow

API_TOKEN = "browser-test-token"


@dataclass
class _Settings:
    api: ApiSettings


class _Visible(HTMLParser):
    """Collects the text a reader sees (not style or script contents) and the element names present."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("style", "script", "title"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "title") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


def dom_of(url: str, user_data: Path) -> _Visible:
    result = run_chromium("--dump-dom", url, user_data=user_data)
    assert result.returncode == 0, result.stderr[-2000:]
    parser = _Visible()
    parser.feed(result.stdout)
    return parser


@pytest.fixture
def served(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, LinkSigner, dict[str, str]]]:
    """The API under uvicorn on a free loopback port, with two stored reports; yields base URL, signer, ids."""
    require_chromium()
    db = tmp_path / "reports.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    readable = sample_report(
        status=ReportStatus.resolved,
        resolved_at=START + timedelta(minutes=37),
        alert=sample_alert(status=AlertStatus.resolved, ends_at=START + timedelta(minutes=37)),
        delivery=DeliveryState.delivered,
        annotation=AnnotationRef(id=4121, dashboard_uid="node-exporter", panel_id=4),
    )
    hostile = sample_report(
        alert=sample_alert(
            fingerprint="xss", labels={"instance": "<script>alert('label')</script>", "severity": "warning"}
        ),
        evidence=[
            Evidence(
                id="log1",
                source="loki",
                kind="log",
                title="nginx: <b>upstream</b> timed out",
                detail='<img src=x onerror="alert(1)"> 502 Bad Gateway',
                at=START,
                score=0.9,
            )
        ],
    )

    async def seed() -> None:
        store = SqliteStore(db)
        await store.init()
        await store.save(readable)
        await store.save(hostile)
        await store.close()

    import asyncio

    asyncio.run(seed())
    env = {
        "API_TOKEN": API_TOKEN,
        "PUBLIC_URL": base,
        "DATABASE_URL": f"sqlite:///{db}",
        "REDIS_URL": redis_url,
        "WEBHOOK_TOKEN": "browser-test-webhook",
        "CHROMA_DIR": str(tmp_path / "chroma"),
        "LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).parent / "sre-triage"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with running(command, port, env=env, cwd=tmp_path, log=tmp_path / "api.log"):
        signer = LinkSigner.from_settings(_Settings(ApiSettings(api_token=API_TOKEN, public_url=base)))
        yield base, signer, {"readable": readable.id, "hostile": hostile.id}


def test_a_signed_link_shows_the_report_in_a_real_browser_and_a_screenshot_is_saved(
    served: tuple[str, LinkSigner, dict[str, str]], tmp_path: Path
) -> None:
    _, signer, ids = served
    url = signer.report_url(ids["readable"])

    page = dom_of(url, tmp_path / "profile")

    text = page.visible
    assert "HostMemoryPressure" in text
    assert "resolved" in text
    assert "37 min" in text
    assert "Most likely causes" in text
    assert "Backup snapshot of lxc/115 doubled the container's page cache" in text
    assert "\u22124 min" in text
    assert "Memory pressure on a Proxmox node" in text
    assert "timed out after 5 s" in text
    assert "annotation 4121 (dashboard node-exporter, panel 4)" in text
    assert "polyline" in page.tags
    assert "script" not in page.tags

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    result = run_chromium(
        f"--screenshot={shot}", "--window-size=1280,1800", "--hide-scrollbars", url, user_data=tmp_path / "profile2"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000


def test_script_in_a_label_and_html_in_a_log_line_appear_as_text(
    served: tuple[str, LinkSigner, dict[str, str]], tmp_path: Path
) -> None:
    _, signer, ids = served

    page = dom_of(signer.report_url(ids["hostile"]), tmp_path / "profile")

    assert "instance=<script>alert('label')</script>" in page.visible
    assert '<img src=x onerror="alert(1)"> 502 Bad Gateway' in page.visible
    assert "nginx: <b>upstream</b> timed out" in page.visible
    assert "script" not in page.tags
    assert "img" not in page.tags
    assert "b" not in page.tags


def test_the_page_without_a_signature_asks_for_credentials(
    served: tuple[str, LinkSigner, dict[str, str]], tmp_path: Path
) -> None:
    base, _, ids = served
    page = dom_of(f"{base}/reports/{ids['readable']}", tmp_path / "profile")
    # the browser is sent to the login form, which returns to the report afterwards
    assert "API token Log in" in page.visible
    assert "pve2 ran out of memory" not in page.visible
