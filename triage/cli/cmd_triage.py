"""``sre-triage triage ALERT.json``: triage a Grafana or Alertmanager notification file in-process and print it.

No Redis and no worker: the same pipeline the worker runs, against the data sources the settings configure, with an
in-memory LLM token budget. The report is stored (so the Grafana annotation's link works and later alerts see it in
their history) and, unless ``--no-deliver``, put on Grafana and sent to NOTIFY_URLS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from reports.links import LinkSigner
from reports.models import Alert, DeliveryState, Report
from reports.payloads import PayloadError, Source, parse_alerts
from reports.render import render_report_markdown
from reports.store import open_store
from triage.settings import Settings, load_settings

EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("payload", type=Path, help="a Grafana (version 1) or Alertmanager (version 4) webhook body")
    parser.add_argument("--json", action="store_true", help="print the report(s) as JSON instead of Markdown")
    parser.add_argument(
        "--no-deliver", action="store_true", help="do not put the report on Grafana or send notifications"
    )
    parser.add_argument(
        "--source",
        choices=("auto", "grafana", "alertmanager"),
        default="auto",
        help="payload format (default: from its version field)",
    )


def detect_source(data: Any) -> Source:
    """``grafana`` for ``version: "1"`` bodies, ``alertmanager`` for ``version: "4"``."""
    version = str(data.get("version", "")) if isinstance(data, dict) else ""
    if version == "4":
        return "alertmanager"
    if version == "1" or (isinstance(data, dict) and "orgId" in data):
        return "grafana"
    raise PayloadError('cannot tell the payload format: expected "version": "1" (Grafana) or "4" (Alertmanager)')


def read_alerts(path: Path, source: str) -> list[Alert]:
    """The alerts of a notification file (raises PayloadError or OSError with a message for the user)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PayloadError(f"{path} is not JSON (line {exc.lineno}: {exc.msg})") from None
    kind: Source = detect_source(data) if source == "auto" else source  # type: ignore[assignment]
    alerts = parse_alerts(kind, data)
    return [alert.model_copy(update={"source": "cli"}) for alert in alerts]


async def triage_file(alerts: list[Alert], settings: Settings, *, deliver_reports: bool) -> list[Report]:
    """Triage every alert concurrently, store each report, deliver unless told not to."""
    # imported here, not at the top: the pipeline pulls in the LLM client, and `sre-triage --help` imports this module
    from triage.analysis.budget import MemoryTokenBudget
    from triage.deps import build_deps, close_deps
    from triage.notify.build import build_notifiers
    from triage.notify.dispatch import deliver_all, give_up
    from triage.pipeline.run import triage

    store = open_store(settings.storage.database_url)
    await store.init()
    deps = build_deps(settings, budget=MemoryTokenBudget(), store=store)
    notifiers = build_notifiers(settings, deps.grafana, None)
    try:

        async def one(alert: Alert) -> Report:
            received = await store.record_alert(alert)
            report = await triage(alert, deps, settings.triage, report=received)
            if not deliver_reports:
                # nothing will ever deliver this report: "pending" would promise a retry that never comes
                report = report.model_copy(update={"delivery": DeliveryState.skipped, "delivery_error": None})
                await store.save(report)
                return report
            await store.save(report)
            # one run, no retries: a channel that failed is "failed" with its error on the page
            report = give_up((await deliver_all(report, notifiers, "triaged")).report, 1)
            await store.save(report)
            return report

        return list(await asyncio.gather(*(one(alert) for alert in alerts)))
    finally:
        await close_deps(deps)
        await store.close()


def print_reports(reports: list[Report], *, as_json: bool, settings: Settings, out: TextIO) -> None:
    if as_json:
        body: Any = [json.loads(r.model_dump_json()) for r in reports]
        out.write(json.dumps(body[0] if len(body) == 1 else body, indent=2, ensure_ascii=False) + "\n")
        return
    # the same signed link the Grafana annotation carries: the page refuses unsigned links once a key is set
    signer = LinkSigner.from_settings(settings)
    for report in reports:
        out.write(render_report_markdown(report, report_url=signer.report_url(report.id)))
        out.write("\n")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        alerts = read_alerts(args.payload, args.source)
    except (PayloadError, OSError) as exc:
        print(f"sre-triage triage: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not alerts:
        print("sre-triage triage: the payload holds no alerts", file=sys.stderr)
        return EXIT_BAD_INPUT
    reports = asyncio.run(triage_file(alerts, settings, deliver_reports=not args.no_deliver))
    print_reports(reports, as_json=args.json, settings=settings, out=sys.stdout)
    return 0
