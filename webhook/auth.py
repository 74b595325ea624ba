"""Webhook authentication: bearer token, basic auth and Grafana's HMAC signature, in any combination.

Every configured method must pass (configuring two means the sender must present both). Secrets are compared with
:func:`hmac.compare_digest` on bytes, so neither their content nor their length leaks through timing. Failure
messages say which credential is missing or wrong, never what was expected or received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from tools.numbers import ascii_int
from triage.settings import WebhookSettings
from webhook.bearer import BEARER_CHALLENGE, authorization_credentials, secret_equal
from webhook.errors import Unauthorized

# Grafana's contact point sends X-Grafana-Alert-Signature when its header field is left blank (the code's default),
# while its documentation shows X-Grafana-Alerting-Signature: both are accepted unless WEBHOOK_HMAC_HEADER names one.
SIGNATURE_HEADERS = ("X-Grafana-Alert-Signature", "X-Grafana-Alerting-Signature")


class WebhookAuth:
    """Checks a request against the configured methods. Header checks run before the body is read."""

    def __init__(self, settings: WebhookSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._token = settings.token.get_secret_value() if settings.token else None
        self._user = settings.basic_user
        self._password = settings.basic_password.get_secret_value() if settings.basic_password else None
        self._hmac_key = settings.hmac_secret.get_secret_value().encode() if settings.hmac_secret else None
        self._signature_headers = (settings.hmac_header,) if settings.hmac_header else SIGNATURE_HEADERS
        self._timestamp_header = settings.hmac_timestamp_header.lower() if settings.hmac_timestamp_header else None
        self._window_s = settings.hmac_replay_window_s
        self._clock = clock

    @property
    def needs_body(self) -> bool:
        return self._hmac_key is not None

    def check_headers(self, headers: Mapping[str, str]) -> None:
        """Bearer and basic auth; raise :class:`Unauthorized` when a configured one is missing or wrong."""
        if self._token is not None:
            tokens = authorization_credentials(headers, "bearer")
            if not tokens:
                raise Unauthorized("missing bearer token (Authorization: Bearer …)", headers=BEARER_CHALLENGE)
            if not any(secret_equal(t, self._token) for t in tokens):
                raise Unauthorized("invalid bearer token", headers=BEARER_CHALLENGE)
        if self._user is not None and self._password is not None:
            encoded = authorization_credentials(headers, "basic")
            if not encoded:
                raise Unauthorized("missing basic auth credentials", headers={"WWW-Authenticate": "Basic"})
            if not any(self._basic_ok(value) for value in encoded):
                raise Unauthorized("invalid basic auth credentials", headers={"WWW-Authenticate": "Basic"})

    def _basic_ok(self, encoded: str) -> bool:
        assert self._user is not None and self._password is not None
        try:
            # b64decode refuses a non-ASCII str with a plain ValueError (binascii.Error covers the rest)
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        # both comparisons always run, so a wrong user name takes as long as a wrong password
        user_ok = secret_equal(user, self._user)
        password_ok = secret_equal(password, self._password)
        return bool(sep) and user_ok and password_ok

    def check_body(self, headers: Mapping[str, str], body: bytes) -> None:
        """Grafana's HMAC-SHA256 signature (hex) over the raw body, or over ``"<timestamp>:" + body``."""
        if self._hmac_key is None:
            return
        signatures = [
            value.strip().lower().removeprefix("sha256=")
            for value in (headers.get(name) for name in self._signature_headers)
            if value and value.strip()
        ]
        if not signatures:
            raise Unauthorized(f"missing signature header {' or '.join(self._signature_headers)}")
        signed = body
        if self._timestamp_header is not None:
            stamp = (headers.get(self._timestamp_header) or "").strip()
            self._check_timestamp(stamp)
            signed = stamp.encode() + b":" + body
        expected = hmac.new(self._hmac_key, signed, hashlib.sha256).hexdigest()
        # every candidate is compared (no early exit), so timing says nothing about which header matched
        matches = [hmac.compare_digest(sig.encode("ascii", "replace"), expected.encode()) for sig in signatures]
        if not any(matches):
            raise Unauthorized("invalid signature")

    def _check_timestamp(self, stamp: str) -> None:
        if not stamp:
            raise Unauthorized(f"missing signature timestamp header {self._timestamp_header}")
        parsed = ascii_int(stamp, max_digits=16)
        if parsed is None:
            raise Unauthorized("signature timestamp is not a Unix time in seconds")
        seconds = parsed
        if seconds > 10**11:  # a sender using milliseconds
            seconds //= 1000
        if abs(self._clock() - seconds) > self._window_s:
            raise Unauthorized(f"signature timestamp is outside the {self._window_s}s replay window")
