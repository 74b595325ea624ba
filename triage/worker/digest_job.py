"""The scheduled alert digest: built from the report store and sent to every NOTIFY_URLS channel.

Run weekly by the worker (``DIGEST_WEEKDAY`` at ``DIGEST_HOUR`` UTC, one worker of several: the cron job is
unique), and on demand by ``sre-triage digest --send``. The rate limit and the severity filter of per-report
messages do not apply: the digest is one message a week.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from reports.digest import Digest, load_digest
from triage.notify.apprise_sender import SendError
from triage.notify.build import chat_notifiers
from triage.notify.message import digest_message
from triage.settings import Settings
from triage.worker.state import WorkerContext

log = logging.getLogger("triage.digest")


@dataclass(frozen=True)
class DigestSent:
    """How many channels took the digest, and the safe error of each that did not."""

    sent: int
    errors: list[str]


def digest_link(settings: Settings, since: str) -> str:
    """The digest page of the same period under PUBLIC_URL (it asks for API_TOKEN)."""
    return f"{settings.api.public_url.rstrip('/')}/digest?{urlencode({'since': since})}"


async def send_digest_to_channels(settings: Settings, digest: Digest, since: str) -> DigestSent:
    """Send ``digest`` to every NOTIFY_URLS channel; a failing channel does not stop the others.

    ``since`` is the period as the page takes it (``7d``), for the message's link.
    """
    message = digest_message(digest, digest_link(settings, since))
    sent, errors = 0, []
    for notifier in chat_notifiers(settings, None):
        try:
            await notifier.sender.send(message.title, message.body, message.kind)
            sent += 1
        except SendError as exc:
            errors.append(f"{notifier.label}: {exc}")
    return DigestSent(sent, errors)


async def send_digest(ctx: dict[str, Any]) -> int:
    """The worker's weekly cron job: the last ``DIGEST_PERIOD_DAYS`` of alerts to every channel; returns how many
    channels took it. Nothing is built when no channel is configured."""
    worker = WorkerContext.from_ctx(ctx)
    settings = worker.settings
    if not settings.notify.url_list:
        return 0
    days = settings.digest.period_days
    until = datetime.now(UTC)
    digest = await load_digest(worker.store, until - timedelta(days=days), until)
    result = await send_digest_to_channels(settings, digest, f"{days}d")
    for error in result.errors:
        log.warning("digest not sent", extra={"error": error[:300]})
    log.info("digest sent", extra={"channels": result.sent, "alerts": digest.total})
    return result.sent
