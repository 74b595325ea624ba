"""Bearer credentials, read and compared one way for every route that takes them.

:data:`BEARER_CHALLENGE` is the ``WWW-Authenticate`` header of every 401 that asks for a bearer token (webhook
intake, the API, report pages). Secrets are compared with :func:`hmac.compare_digest` on bytes, so neither their
content nor their length leaks through timing.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sre-triage"'}


def secret_equal(given: str, expected: str) -> bool:
    """Constant-time equality of a presented credential and the configured one."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def scheme_credential(value: str | None, scheme: str) -> str | None:
    """The credential part of one ``Authorization`` value when its scheme is ``scheme`` (any case), else None."""
    kind, _, credential = (value or "").strip().partition(" ")
    return credential.strip() if kind.lower() == scheme else None


def authorization_credentials(headers: Mapping[str, str], scheme: str) -> list[str]:
    """Credentials of every Authorization header with ``scheme`` (Grafana can send bearer and basic together)."""
    getter = getattr(headers, "getlist", None)
    values = getter("authorization") if getter else [headers.get("authorization", "")]
    return [c for c in (scheme_credential(v, scheme) for v in values) if c is not None]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of the request's ``Authorization: Bearer <token>`` header; None when it has no such non-empty one."""
    return scheme_credential(headers.get("authorization"), "bearer") or None
