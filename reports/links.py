"""Signed report links: ``PUBLIC_URL/reports/{id}?exp=<epoch>&sig=<hex>``, opened without a login until ``exp``.

``sig`` is HMAC-SHA256 over ``"{report_id}:{exp}"``. The key is ``LINK_SIGNING_KEY`` when set; otherwise it is
derived from ``API_TOKEN`` as HMAC-SHA256(API_TOKEN, ``"sre-triage report links v1"``), so a link never reveals
anything about the token, and rotating the token (or the key) revokes every link already handed out. With neither
set there is no key and no signed link is valid.

A signature authorises one report id in every representation (HTML, JSON, Markdown), nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from tools.numbers import ascii_int

KEY_DERIVATION_CONTEXT = b"sre-triage report links v1"
MAX_SIG_HEX = 64


class ApiSettingsLike(Protocol):
    @property
    def public_url(self) -> str: ...

    @property
    def link_ttl_s(self) -> int: ...

    @property
    def link_signing_key(self) -> SecretStr | None: ...

    @property
    def api_token(self) -> SecretStr | None: ...


class SettingsLike(Protocol):
    """What reports need of the settings object (the ``api`` group), without importing the settings layer."""

    @property
    def api(self) -> ApiSettingsLike: ...


def derive_key(api: ApiSettingsLike) -> bytes | None:
    """The link-signing key of these settings, or None when neither LINK_SIGNING_KEY nor API_TOKEN is set."""
    if api.link_signing_key is not None and api.link_signing_key.get_secret_value():
        return api.link_signing_key.get_secret_value().encode()
    if api.api_token is not None and api.api_token.get_secret_value():
        return hmac.new(api.api_token.get_secret_value().encode(), KEY_DERIVATION_CONTEXT, hashlib.sha256).digest()
    return None


def signature(key: bytes, report_id: str, exp: int) -> str:
    """Hex HMAC-SHA256 of ``"{report_id}:{exp}"``."""
    return hmac.new(key, f"{report_id}:{exp}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class LinkSigner:
    """Builds and checks signed report links for one key and public base URL."""

    key: bytes | None
    public_url: str
    ttl_s: int

    @classmethod
    def from_settings(cls, settings: SettingsLike) -> LinkSigner:
        api = settings.api
        return cls(key=derive_key(api), public_url=api.public_url.rstrip("/"), ttl_s=api.link_ttl_s)

    def query(self, report_id: str, *, now: float | None = None) -> str:
        """``?exp=…&sig=…`` for ``report_id`` (empty when no key is configured)."""
        if self.key is None:
            return ""
        exp = int((now if now is not None else time.time()) + self.ttl_s)
        return "?" + urlencode({"exp": exp, "sig": signature(self.key, report_id, exp)})

    def report_url(self, report_id: str, *, now: float | None = None, suffix: str = "") -> str:
        """The absolute, signed link to a report page (``suffix`` ``.json``/``.md`` for the other forms)."""
        path = f"{self.public_url}/reports/{quote(report_id, safe='')}{suffix}"
        return path + self.query(report_id, now=now)

    def verify(self, report_id: str, exp: str | None, sig: str | None, *, now: float | None = None) -> bool:
        """True when ``sig`` signs ``report_id`` until ``exp`` and ``exp`` has not passed (constant-time compare)."""
        expires = ascii_int(exp or "", max_digits=12)
        if self.key is None or expires is None or not sig or len(sig) > MAX_SIG_HEX or not sig.isascii():
            return False
        expected = signature(self.key, report_id, expires)
        if not hmac.compare_digest(expected.encode(), sig.lower().encode()):
            return False
        return expires >= (now if now is not None else time.time())
