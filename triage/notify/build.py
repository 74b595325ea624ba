"""The notifier list of a configuration: the Grafana annotation first, then one Apprise channel per NOTIFY_URLS entry."""

from __future__ import annotations

from redis.asyncio import Redis

from reports.links import LinkSigner
from tools.grafana import GrafanaClient
from triage.notify.apprise_sender import AppriseSender
from triage.notify.base import Notifier
from triage.notify.chat import ChatNotifier
from triage.notify.grafana import GrafanaNotifier
from triage.notify.rate import RateLimiter
from triage.settings import Settings


def chat_notifiers(settings: Settings, redis: Redis | None) -> list[ChatNotifier]:
    """One notifier per NOTIFY_URLS entry, keyed ``notify-1``, ``notify-2`` … in the order given.

    Without Redis (the ``sre-triage triage`` command) there is no rate limit: one file, one run.
    """
    notify = settings.notify
    limiter = RateLimiter(redis, notify.rate_limit_s) if redis is not None and notify.rate_limit_s else None
    signer = LinkSigner.from_settings(settings)
    return [
        ChatNotifier(
            key=f"notify-{position}",
            sender=AppriseSender(url, timeout_s=notify.timeout_s),
            signer=signer,
            severities=notify.severity_set,
            on_resolve=notify.on_resolve,
            limiter=limiter,
        )
        for position, url in enumerate(notify.url_list, 1)
    ]


def build_notifiers(settings: Settings, grafana: GrafanaClient | None, redis: Redis | None) -> list[Notifier]:
    """Every delivery channel of ``settings``, the Grafana annotation first (its link is the report's home)."""
    return [GrafanaNotifier(grafana, settings), *chat_notifiers(settings, redis)]
