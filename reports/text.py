"""Making untrusted text safe to show: control and bidi characters dropped, length bounded, Markdown escaped.

HTML escaping is Jinja's autoescape; this module does what autoescape does not: bounding (a 100 kB log line must
not make a 100 kB page), removing characters that reorder or hide text (a right-to-left override can make
``exe.txt`` read as ``txt.exe``), and escaping for Markdown, whose renderers pass raw HTML through.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

# C0/C1 controls except tab and newline, bidi embeddings/overrides/isolates, zero-width and BOM characters.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
# Characters that can open Markdown or HTML markup anywhere in a line (emphasis, code, links, images, tables,
# strikethrough, raw HTML). "-", "+", "=", "." and ":" only matter where a block starts (_MD_BLOCK_START); escaping
# them everywhere made URLs, dates and host names unreadable in plain-text viewers.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~>])")
# What turns the start of a line into a heading, quote, list item, rule or setext underline.
_MD_BLOCK_START = re.compile(r"^(\s*)([#>+=-]|\d+[.)])")
_BACKTICKS = re.compile(r"`+")
MINUS = "\u2212"


def clean(text: str | None, limit: int) -> str:
    """``text`` without invisible/bidi characters, cut to ``limit`` characters with a note of what was cut."""
    if not text:
        return ""
    if len(text) > 4 * limit:
        # cleaning a 100 kB string only to cut it is waste; keep a margin for removed characters
        text = text[: 4 * limit]
        cut_hint = True
    else:
        cut_hint = False
    text = _INVISIBLE.sub("", text)
    if len(text) > limit:
        return text[:limit].rstrip() + " … (truncated)"
    return text + (" … (truncated)" if cut_hint else "")


def one_line(text: str | None, limit: int) -> str:
    """Like :func:`clean`, with whitespace runs (newlines included) folded into single spaces."""
    return " ".join(clean(text, limit).split())


def md_inline(text: str | None) -> str:
    """Escape a value for inline Markdown: specials backslash-escaped, HTML neutralised, kept on one line."""
    if not text:
        return ""
    escaped = _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))
    escaped = _MD_BLOCK_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], escaped)
    return escaped.replace("&", "&amp;").replace("<", "&lt;")


def md_text(text: str | None) -> str:
    """Escape multi-line text for Markdown: each line escaped like :func:`md_inline`, line breaks kept."""
    if not text:
        return ""
    return "  \n".join(md_inline(line) for line in text.splitlines() if line.strip())


def md_url(url: str) -> str:
    """A URL made safe inside a Markdown ``<…>`` link destination."""
    return url.replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")


def md_code_block(text: str | None, lang: str = "") -> str:
    """A fenced code block holding ``text`` literally (the fence is longer than any backtick run inside)."""
    body = text or ""
    longest = max((len(m) for m in _BACKTICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL, else None (``javascript:`` and friends never become links)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or _INVISIBLE.search(url):
        return None
    return url


def fmt_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``, ``3 d 4 h``."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def fmt_offset(at: datetime, origin: datetime) -> str:
    """The signed offset of ``at`` from ``origin``: ``−12 min``, ``+40 s``, ``at start``."""
    delta: timedelta = at - origin
    seconds = delta.total_seconds()
    if abs(seconds) < 1:
        return "at start"
    sign = MINUS if seconds < 0 else "+"
    return sign + fmt_duration(seconds)


def fmt_time(value: datetime | None) -> str:
    """UTC wall time for a report: ``2026-03-01 12:04:05 UTC``."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
