"""``sre-triage digest [--since 7d] [--format md|html|json] [--send]``: the alert digest of a period.

Printed from the report store (no data source is asked); ``--send`` also sends it to every NOTIFY_URLS channel.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from reports.digest import Digest, DigestPeriodError, load_digest, parse_since
from reports.render import render_digest_html, render_digest_markdown
from reports.store import StoreError, open_store
from triage.settings import Settings, load_settings

EXIT_BAD_INPUT = 2
EXIT_NOT_SENT = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", default="7d", help="period: 7d, 24h, 90m, 2w or a date (default 7d)")
    parser.add_argument("--format", choices=("md", "html", "json"), default="md", help="output format (default md)")
    parser.add_argument("--send", action="store_true", help="also send the digest to every NOTIFY_URLS channel")


async def _load(settings: Settings, since: datetime, until: datetime) -> Digest:
    store = open_store(settings.storage.database_url)
    await store.init()
    try:
        return await load_digest(store, since, until)
    finally:
        await store.close()


def render(digest: Digest, fmt: str, settings: Settings, since_text: str) -> str:
    """The digest in the requested format."""
    if fmt == "json":
        return json.dumps(digest.to_json(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        return render_digest_html(digest, since_param=since_text)
    return render_digest_markdown(digest, base_url=settings.api.public_url)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    until = datetime.now(UTC)
    try:
        since = parse_since(args.since, until)
    except DigestPeriodError as exc:
        print(f"sre-triage digest: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        digest = asyncio.run(_load(settings, since, until))
    except StoreError as exc:
        print(f"sre-triage digest: the report store failed: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render(digest, args.format, settings, args.since))
    if not args.send:
        return 0
    if not settings.notify.url_list:
        print("sre-triage digest: --send needs NOTIFY_URLS", file=sys.stderr)
        return EXIT_BAD_INPUT
    from triage.worker.digest_job import send_digest_to_channels

    result = asyncio.run(send_digest_to_channels(settings, digest, args.since.strip()))
    for error in result.errors:
        print(f"sre-triage digest: not sent to {error}", file=sys.stderr)
    return 0 if not result.errors else EXIT_NOT_SENT
