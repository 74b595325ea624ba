"""Redaction of secrets found in report text before it is stored or rendered.

Evidence carries text from the outside world (log lines, task logs, alert labels and annotations, LLM output), and
any of it may contain a credential someone pasted or a service logged. A report page is shared by link, so every
string of a report passes through :func:`redact_text` before the store writes it.

The patterns favour redacting too much over leaking: a false positive hides a word in a report, a false negative
publishes a password. Every pattern is linear-time (no nested quantifiers) because inputs can be 100 kB log lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MASK = "[REDACTED]"
MAX_KEY_CHARS = 200

# Keys whose value is a secret whatever it looks like (labels, annotations, evidence data).
_SECRET_KEY = re.compile(
    r"(?i)^(?:.*[_-])?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
    r"client[_-]?secret|auth|authorization|credentials?|cookie|session[_-]?id)$"
)

_Sub = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]

_PATTERNS: list[_Sub] = [
    # PEM private keys: the whole block, including an unterminated one cut off by a log line limit.
    (
        re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|.*)", re.DOTALL),
        "-----BEGIN PRIVATE KEY-----" + MASK + "-----END PRIVATE KEY-----",
    ),
    # Proxmox VE: PVEAPIToken=user@realm!tokenid=UUID — the token id stays (it names who), the secret goes.
    (re.compile(r"(PVEAPIToken=[^\s=:]+[=:])[^\s\"',;]+"), r"\1" + MASK),
    # Proxmox Backup Server: PBSAPIToken=user@realm!tokenid:SECRET
    (re.compile(r"(PBSAPIToken=[^\s=:]+:)[^\s\"',;]+"), r"\1" + MASK),
    # Authorization headers whatever the scheme, and bearer credentials wherever they appear.
    (re.compile(r"(?i)\b(authorization\s*+[:=]\s*+)(?!\[REDACTED\])[^\r\n\"',;]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=\-]{8,}"), r"\1" + MASK),
    # user:password@ in URLs (any scheme).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@\"'<>]*):[^\s@/\"'<>]+@"), r"\1:" + MASK + "@"),
    # key=value / key: value / "key": "value" for secret-looking keys.
    (
        re.compile(
            r"(?i)(?<![a-z0-9])((?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
            r"secret[_-]?key|client[_-]?secret|private[_-]?key|auth[_-]?token|session[_-]?id)"
            r"[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])[^\s\"',;&<>]{1,}"
        ),
        r"\1" + MASK,
    ),
    # AWS access key ids and well-known token formats with fixed prefixes.
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"), MASK),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"), MASK),
    (re.compile(r"\bglsa_[A-Za-z0-9_]{20,}"), MASK),
    (re.compile(r"\bglc_[A-Za-z0-9+/=_\-]{20,}"), MASK),
    (re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}"), MASK),
    # JSON Web Tokens (three base64url parts, the first two starting with '{"').
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), MASK),
]


# One cheap scan for anything any pattern could match; most strings of a report (titles, numbers, hostnames) have
# none, and skipping the full pattern list for them makes redaction of a whole report ~10x cheaper.
_MAYBE_SECRET = re.compile(
    r"(?i)private[_ -]?key|apitoken|authorization|bearer|://[^\s/@]*:[^\s/@]*@|passw|pwd|secret|token|api[_-]?key|"
    r"access[_-]?key|session[_-]?id|AKIA|ASIA|AGPA|AIDA|AROA|ANPA|gh[pousr]_|github_pat|xox|glsa_|glc_|sk-|eyJ"
)


def redact_text(text: str) -> str:
    """Return ``text`` with every secret pattern replaced by ``[REDACTED]``."""
    if not text:
        return text
    # NUL cannot be stored by PostgreSQL and shows as nothing in a browser; dropping it loses no information.
    text = text.replace("\x00", "")
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def is_secret_key(key: str) -> bool:
    """True when a mapping key names a credential (``password``, ``db_token``, ``X-Api-Key`` …)."""
    # Real keys are short; bounding the length keeps the match linear on hostile input.
    return len(key) <= MAX_KEY_CHARS and bool(_SECRET_KEY.match(key.strip()))


def redact_data(value: Any) -> Any:
    """Redact every string inside JSON-like data; values under secret-looking keys are masked whole."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and is_secret_key(key) and isinstance(item, str | int | float) and item != "":
                out[key] = MASK
            else:
                out[key] = redact_data(item)
        return out
    if isinstance(value, list):
        return [redact_data(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redact_data(item) for item in value)
    return value
