"""One Apprise URL (``ntfy://…``, ``json://…``, ``mailto://…``, ``discord://…`` …) as a sender of title + body.

Apprise reports a failed send as ``False`` and explains it only in its log, so the explanation is captured from the
log, scrubbed of every secret-looking part of the URL and redacted before it reaches a report, a log line or an
error. Apprise's own log records never reach ours: some of them quote the URL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from dataclasses import dataclass, field
from typing import Literal

import apprise

from reports.redact import MASK, redact_text
from reports.text import one_line

_APPRISE_LOG = logging.getLogger("apprise")
_APPRISE_LOG.addHandler(logging.NullHandler())
_APPRISE_LOG.propagate = False

# URL parts at least this long that the privacy form of the URL does not show are treated as secrets.
MIN_SECRET_CHARS = 4
MAX_ERROR_CHARS = 300
Kind = Literal["failure", "warning", "success", "info"]
_KINDS: dict[Kind, apprise.NotifyType] = {
    "failure": apprise.NotifyType.FAILURE,
    "warning": apprise.NotifyType.WARNING,
    "success": apprise.NotifyType.SUCCESS,
    "info": apprise.NotifyType.INFO,
}
_LOG_PREFIX = re.compile(r"^\S+ \S+ - [A-Z]+ - ", re.MULTILINE)
# Apprise's log capture is process-wide: sends take turns so one channel's error never carries another's log lines
# (scrubbed only of its own URL's secrets). Sends are few (rate-limited), so taking turns costs little.
_CAPTURE_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _capture_lock() -> asyncio.Lock:
    """The running event loop's lock (an asyncio lock must not be shared between loops)."""
    loop = asyncio.get_running_loop()
    lock = _CAPTURE_LOCKS.get(loop)
    if lock is None:
        lock = _CAPTURE_LOCKS[loop] = asyncio.Lock()
    return lock


class NotifyUrlError(ValueError):
    """A notification URL Apprise cannot use; the message names its position and scheme, never the URL."""


class SendError(Exception):
    """A send failed; the message is safe to store and show."""


def split_urls(text: str) -> list[str]:
    """The comma-separated URLs of ``NOTIFY_URLS`` (blank entries ignored)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _scheme(url: str) -> str:
    head, sep, _ = url.partition("://")
    return head if sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", head) else "?"


def privacy_label(url: str) -> str:
    """The URL as Apprise prints it with secrets masked, host only (``ntfy://u...r:****@ntfy.lan/…``).

    The path is left out: Apprise shows it, but a generic webhook's path or an ntfy topic often is the secret.
    """
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return f"{_scheme(url)}://…"
    full = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]
    scheme, _, rest = full.split("?", 1)[0].partition("://")
    host, slash, path = rest.partition("/")
    return redact_text(f"{scheme}://{host}" + ("/…" if slash and path.strip("/") else ""))


def validate_urls(text: str) -> list[str]:
    """The URLs of ``text``; raise :class:`NotifyUrlError` for one Apprise does not know (position and scheme only)."""
    urls = split_urls(text)
    for position, url in enumerate(urls, 1):
        if apprise.Apprise.instantiate(url) is None:
            raise NotifyUrlError(
                f"entry {position} ({_scheme(url)}://…) is not a notification URL Apprise supports "
                "(see https://github.com/caronc/apprise/wiki)"
            )
    return urls


def scrub(text: str, url: str, label: str) -> str:
    """``text`` without any part of ``url`` that ``label`` (its privacy form) does not show, then redacted."""
    for part in sorted(set(re.split(r"[/:@?&=#,;]+", url)), key=len, reverse=True):
        if len(part) >= MIN_SECRET_CHARS and part not in label:
            text = text.replace(part, MASK)
    return redact_text(text)


@dataclass
class AppriseSender:
    """Sends to one Apprise URL. ``label`` is safe to show; the URL itself never leaves this object."""

    url: str = field(repr=False)
    timeout_s: float = 20.0
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or privacy_label(self.url)

    async def send(self, title: str, body: str, kind: Kind) -> None:
        """Send one message; raise :class:`SendError` (safe message) when Apprise could not deliver it."""
        client = apprise.Apprise()
        if not client.add(self.url):
            raise SendError(f"{self.label}: not a notification URL Apprise supports")
        async with _capture_lock():
            ok, log_text = await self._notify(client, title, body, kind)
        if not ok:
            reason = _LOG_PREFIX.sub("", log_text).strip() or "the service did not accept the message"
            raise SendError(one_line(scrub(reason, self.url, self.label), MAX_ERROR_CHARS))

    async def _notify(self, client: apprise.Apprise, title: str, body: str, kind: Kind) -> tuple[bool, str]:
        with apprise.LogCapture(level=logging.WARNING) as captured:  # type: ignore[no-untyped-call]
            try:
                ok = await asyncio.wait_for(
                    client.async_notify(
                        body=body, title=title, notify_type=_KINDS[kind], body_format=apprise.NotifyFormat.TEXT
                    ),
                    timeout=self.timeout_s,
                )
            except TimeoutError:
                raise SendError(f"no answer within {self.timeout_s:g} s") from None
            return bool(ok), str(captured.getvalue())
