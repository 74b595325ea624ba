"""Rendering: the report page, Markdown and annotation text show what matters and stay safe with hostile input."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.chart import MAX_POINTS, build_chart
from reports.context import ReportListPage, build_report_page, build_report_row
from reports.models import DeliveryState, Evidence, Hypothesis, Report, ReportStatus, SourceStatus
from reports.render import (
    MAX_ANNOTATION_CHARS,
    render_annotation_text,
    render_error_html,
    render_list_html,
    render_report_html,
    render_report_markdown,
)
from reports.text import md_inline
from tests.support.sample_reports import START, sample_alert, sample_report

SCRIPT = "<script>alert(document.cookie)</script>"
IMG = '<img src=x onerror="alert(1)">'
MD_LINK = "[click me](javascript:alert(1))"
RTL = "invoice\u202egpj.exe"
HUGE = "A" * 100_000


def hostile_report() -> Report:
    alert = sample_alert(
        alertname=f"Disk{SCRIPT}",
        labels={"instance": SCRIPT, "note": MD_LINK, "rtl": RTL, "huge": HUGE, "emoji": "💥 ürgent 日本"},
        annotations={"summary": IMG, "description": "# heading\n---\n| a | b |"},
        generator_url="javascript:alert(1)",
    )
    return sample_report(
        alert=alert,
        summary=f"{SCRIPT} {MD_LINK}\n# not a heading\n```\nbreak out\n```\n{HUGE}",
        hypotheses=[Hypothesis(title=IMG, confidence=0.9, evidence=["log"], next_steps=[MD_LINK])],
        evidence=[
            Evidence(
                id="log",
                source="loki",
                kind="log",
                title=f"log line {IMG}",
                detail=f"GET /login?next={SCRIPT} ``` </pre> {HUGE}",
                at=START - timedelta(minutes=3),
                score=0.8,
            ),
            Evidence(id='"><svg onload=alert(1)>', source=SCRIPT, kind="x", title="weird id", score=0.1),
        ],
        delivery_error=SCRIPT,
    )


def test_page_shows_header_summary_hypotheses_timeline_chart_and_source_table() -> None:
    html = render_report_html(sample_report(), now=START + timedelta(minutes=10))

    assert "<h1>HostMemoryPressure</h1>" in html
    assert "firing for 10 min" in html
    assert "pve2 ran out of memory" in html
    assert "Backup snapshot of lxc/115 doubled the container&#39;s page cache" in html
    assert "confidence 72%" in html
    assert "\u221220 min" in html  # the upgrade, 20 minutes before the start
    assert "+1 min" in html  # the OOM kill after it
    assert html.count("<polyline") == 2
    assert "Memory pressure on a Proxmox node" in html
    assert "timed out after 5 s" in html
    assert "qwen2.5:7b-instruct" in html
    assert "Fired 2 times in 30 days (rare)" in html
    assert "pending" in html
    assert "<script" not in html


def test_resolved_report_shows_its_duration() -> None:
    report = sample_report(status=ReportStatus.resolved, resolved_at=START + timedelta(minutes=37))
    html = render_report_html(report)
    assert "37 min" in html
    assert "firing for" not in html


def test_hostile_values_are_escaped_and_bounded_in_html() -> None:
    html = render_report_html(hostile_report())

    assert "<script" not in html.lower()
    assert "<img" not in html
    assert "<svg onload" not in html
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert 'href="javascript' not in html
    assert "\u202e" not in html
    assert "💥 ürgent 日本" in html
    assert len(html) < 120_000
    assert "(truncated)" in html


def test_hostile_values_cannot_inject_markdown() -> None:
    md = render_report_markdown(hostile_report(), report_url="https://triage.lan/reports/x")
    # inside fenced code blocks markup is inert text; everywhere else it must be neutralised
    outside = re.sub(r"^(`{3,})\n.*?\n\1$", "", md, flags=re.MULTILINE | re.DOTALL)

    assert "<script" in md  # the log line, verbatim inside its fence
    assert "<script" not in outside
    assert "<img" not in outside
    assert "](javascript" not in md
    assert "\\[click me\\]\\(javascript" in md
    assert "\n# not a heading" not in md
    assert "\u202e" not in md
    assert len(md) < 60_000
    # the log detail sits in a fence longer than any backtick run inside it
    fences = re.findall(r"^(`{3,})$", md, flags=re.MULTILINE)
    assert "````" in fences


def test_markdown_carries_the_report_sections() -> None:
    md = render_report_markdown(sample_report(), report_url="https://triage.lan/reports/abc?exp=1&sig=f")
    assert md.startswith("# HostMemoryPressure — firing (critical)\n")
    for heading in ("## Summary", "## Most likely causes", "## Timeline", "## Evidence", "## Data sources"):
        assert f"\n{heading}\n" in md
    assert "[full report](<https://triage.lan/reports/abc?exp=1&sig=f>)" in md
    assert "| \u22124 min | pbs | PBS backup of ct/115 started |" in md


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_inline_markdown_escaping_leaves_no_markup(text: str) -> None:
    out = md_inline(text)
    assert "\n" not in out
    assert "<" not in out
    unescaped = re.sub(r"\\.", "", out)
    assert not set("[]()`*_#|<>!") & set(unescaped)


def test_annotation_text_is_short_escaped_and_links_the_report() -> None:
    report = hostile_report()
    text = render_annotation_text(report, "https://triage.lan/reports/x?exp=1&sig=ab")

    assert len(text) <= MAX_ANNOTATION_CHARS
    assert "<script" not in text
    assert "<img" not in text
    assert text.endswith('<a href="https://triage.lan/reports/x?exp=1&amp;sig=ab">Full report</a>')
    assert "Most likely:" in text


def test_annotation_text_of_a_normal_report_reads_summary_then_top_hypothesis() -> None:
    text = render_annotation_text(sample_report(), "https://t/r")
    lines = text.splitlines()
    assert lines[0] == "sre-triage: HostMemoryPressure (triaged)"
    assert lines[1].startswith("pve2 ran out of memory")
    assert lines[2].startswith("Most likely: Backup snapshot")
    assert lines[2].endswith("(72%)")


def test_chart_is_bounded_and_marks_the_alert_start() -> None:
    start_s = START.timestamp()
    many = [(start_s - 3600 + i, float(i % 7)) for i in range(5000)]
    chart = build_chart(
        [Evidence(id="s", source="prometheus", kind="signal", title="signal", series=many, score=1.0)],
        START - timedelta(minutes=30),
    )
    assert chart is not None
    assert len(chart.lines[0].points.split()) == MAX_POINTS
    assert chart.marker_x is not None
    assert 0 < chart.marker_x < chart.width


def test_chart_is_omitted_when_no_evidence_has_a_series() -> None:
    report = sample_report(evidence=[Evidence(id="x", source="loki", kind="log", title="t")])
    assert build_report_page(report).chart is None
    assert "<svg" not in render_report_html(report)


def test_chart_ignores_non_finite_points() -> None:
    series = [(1.0, float("nan")), (2.0, 1.0), (3.0, float("inf")), (4.0, 2.0)]
    chart = build_chart([Evidence(id="s", source="p", kind="signal", title="t", series=series)], START)
    assert chart is not None
    assert len(chart.lines[0].points.split()) == 2


@pytest.mark.parametrize("state", list(DeliveryState))
def test_every_delivery_state_is_shown(state: DeliveryState) -> None:
    html = render_report_html(sample_report(delivery=state, delivery_error="grafana: HTTP 503"))
    assert f'st-{state.value}">{state.value}</span>' in html


def test_list_and_error_pages_render_escaped() -> None:
    report = hostile_report()
    page = ReportListPage(rows=[build_report_row(report, f"/reports/{report.id}")], total=1, offset=0, limit=50)
    html = render_list_html(page)
    assert "<script" not in html
    assert f'href="/reports/{report.id}"' in html

    error = render_error_html(401, "Not authorised", SCRIPT)
    assert "<script" not in error
    assert "&lt;script&gt;" in error


def source_table_report() -> Report:
    return sample_report(
        sources={
            "saturation": SourceStatus(ok=True, ms=80.0, requests=4, state="ok"),
            "log_errors": SourceStatus(ok=False, error="not configured (set LOKI_URL)", state="not_configured"),
            "backups": SourceStatus(ok=False, ms=40.0, error="HTTP 500: datastore offline", state="failed"),
            "changes": SourceStatus(ok=False, ms=5000.0, error="did not finish within 5s", state="timeout"),
        }
    )


def source_rows(html: str) -> dict[str, tuple[str, str]]:
    section = html.split('id="sources"', 1)[1].split("</section>", 1)[0]
    rows = re.findall(r'<tr><td>([^<]+)</td><td class="([^"]+)">([^<]+)</td>', section)
    return {name: (css, label) for name, css, label in rows}


def test_page_shows_a_source_that_is_not_configured_neutrally_not_as_failed() -> None:
    rows = source_rows(render_report_html(source_table_report()))
    assert rows["log_errors"] == ("st-disabled", "not configured")
    assert rows["backups"] == ("st-failed", "failed")
    assert rows["changes"] == ("st-failed", "timed out")
    assert rows["saturation"] == ("st-resolved", "ok")


def test_markdown_shows_a_source_that_is_not_configured_as_such() -> None:
    text = render_report_markdown(source_table_report())
    assert "| log\\_errors | not configured |" in text
    assert re.search(r"\| backups \| failed \|", text)
    assert re.search(r"\| changes \| timed out \|", text)


@pytest.mark.parametrize(
    ("stored", "state"),
    [
        ({"ok": True, "ms": 3.0}, "ok"),
        ({"ok": False, "error": "not configured (set PROXMOX_URL)"}, "not_configured"),
        ({"ok": False, "error": "did not finish within the triage deadline of 20s"}, "timeout"),
        ({"ok": False, "error": "HTTP 502: bad gateway"}, "failed"),
        ({"ok": False}, "failed"),
    ],
)
def test_reports_stored_before_source_states_existed_read_with_the_right_state(
    stored: dict[str, object], state: str
) -> None:
    report = Report.model_validate_json(sample_report().model_dump_json(exclude={"sources"}))
    data = report.model_dump(mode="json")
    data["sources"] = {"proxmox": stored}
    assert Report.model_validate(data).sources["proxmox"].state == state


def test_source_state_survives_a_json_round_trip() -> None:
    report = source_table_report()
    again = Report.model_validate_json(report.model_dump_json())
    assert {n: s.state for n, s in again.sources.items()} == {n: s.state for n, s in report.sources.items()}


def test_markdown_keeps_urls_dates_and_host_names_readable_but_neutralises_block_starts() -> None:
    assert md_inline("https://grafana.lan/d/abc at 2026-11-26 10:05") == "https://grafana.lan/d/abc at 2026-11-26 10:05"
    assert md_inline("- not a list item") == "\\- not a list item"
    assert md_inline("1. not an ordered list") == "1\\. not an ordered list"
    assert md_inline("=== not a setext underline") == "\\=== not a setext underline"
