"""Every form a credential takes on the wire or in text, and credentials moved out of URLs.

One rule for all redaction: a configured secret is masked in every form an upstream may echo back or a library may
log: the raw value, the ``Authorization`` header value we send, its credential part, and for Basic auth the base64
of ``user:password``, ``user:password`` itself and the password. Credentials written inside a URL
(``http://user:pw@host``) are secrets like any other: :func:`split_userinfo` takes them out of the URL so that the
URL can be shown, and :func:`url_secret_forms` lists what must be masked.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

# Fragments under four characters (a scheme word, a one-letter user) would garble every message and protect nothing.
MIN_FORM_CHARS = 4
_CREDENTIAL_SCHEMES = ("bearer", "basic", "token")
# settings fields that are sent (or checked) together as one Basic credential
_BASIC_PAIRS = (("username", "password"), ("basic_user", "basic_password"))


def basic_credential(username: str, password: str) -> str:
    """The credential part of a Basic ``Authorization`` header: base64 of ``user:password``."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """``(url without user:password@, user, password)``; user and password are percent-decoded, None when absent."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None, None
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    stripped = urlunsplit(parts._replace(netloc=host))
    return stripped, unquote(user) or None, unquote(password) if has_password else None


def url_secret_forms(url: str) -> list[str]:
    """What a URL's userinfo puts on the wire and may come back in text: the password (raw and percent-encoded),
    ``user:password`` and its base64 (the Basic header an HTTP client sends for it)."""
    _, user, password = split_userinfo(url)
    if not password:
        return []
    forms = [password, f"{user or ''}:{password}", basic_credential(user or "", password)]
    with contextlib.suppress(ValueError):
        raw = urlsplit(url).password
        if raw:
            forms.append(raw)
    return forms


def credential_forms(values: Iterable[str]) -> list[str]:
    """Every form the given header values and secrets may take in text, longest first.

    A header value yields itself and its credential part; a Basic credential also yields the decoded
    ``user:password`` and the password. Longest first, so a secret containing another is replaced whole.
    """
    forms: set[str] = set()
    for value in values:
        if not value:
            continue
        forms.add(value)
        scheme, _, credential = value.partition(" ")
        if credential and scheme.lower() in _CREDENTIAL_SCHEMES:
            forms.add(credential)
            if scheme.lower() == "basic":
                with contextlib.suppress(binascii.Error, ValueError, UnicodeDecodeError):
                    user_pass = base64.b64decode(credential, validate=True).decode()
                    forms.update((user_pass, user_pass.partition(":")[2]))
    return sorted((f for f in forms if len(f) >= MIN_FORM_CHARS), key=len, reverse=True)


# a path segment or host of a notification URL this long is a token (webhook ids and tokens, bot tokens); shorter
# ones are topics, channels and host names that may appear in text for other reasons
TOKEN_SEGMENT_CHARS = 16


def list_item_forms(value: str) -> list[str]:
    """What each item of a secret holding several may show on its own: the comma-separated items, the token of an
    ``ID=TOKEN`` item (``GRAFANA_ORG_TOKENS``), and for a URL item (``NOTIFY_URLS``) its userinfo forms and the
    token-long parts of its host and path (``discord://WEBHOOK_ID/WEBHOOK_TOKEN``, ``tgram://BOT_TOKEN/CHAT``)."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if len(items) < 2 and not any("=" in item or "://" in item for item in items):
        return []
    forms: list[str] = []
    for item in items:
        forms.append(item)
        if "://" in item:
            forms.extend(url_secret_forms(item))
            rest = item.partition("://")[2].partition("?")[0]
            forms.extend(part for part in rest.replace("@", "/").split("/") if len(part) >= TOKEN_SEGMENT_CHARS)
        elif "=" in item:
            forms.append(item.partition("=")[2].strip())
    return forms


def secret_values(settings: BaseModel) -> list[str]:
    """Every secret of a settings tree in every form: SecretStr values (every ``*_TOKEN``, ``*_PASSWORD``,
    ``*_KEY`` …), the userinfo of URL settings, and the Basic credential of a group's ``username`` + ``password``
    (what the clients send), and each item of a secret that lists several (:func:`list_item_forms`). Longest first.
    The one list both the log formatter and the /ask redactor mask."""
    found: list[str] = []

    def walk(model: BaseModel) -> None:
        fields = type(model).model_fields
        for name in fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(value)
            elif isinstance(value, SecretStr):
                found.append(value.get_secret_value())
                found.extend(list_item_forms(value.get_secret_value()))
            elif isinstance(value, str) and "://" in value:
                found.extend(url_secret_forms(value))
        for user_field, password_field in _BASIC_PAIRS:
            username, password = getattr(model, user_field, None), getattr(model, password_field, None)
            if isinstance(username, str) and isinstance(password, SecretStr) and username:
                found.append("Basic " + basic_credential(username, password.get_secret_value()))

    walk(settings)
    return credential_forms(found)
