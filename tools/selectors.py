"""The one place where PromQL and LogQL selectors are built from values we do not control.

Label values arrive in alerts, which anyone who can reach an exporter or a log shipper can shape. A value such as
``x"} or vector(1) #`` pasted into a query string would add a matcher, a binary operator or a LogQL pipeline stage.
Every value therefore goes through :func:`quote` (a string literal that both parsers read back byte for byte) and,
for regex matchers, :func:`regex_escape` first (so the regex matches exactly the literal value).

Label and metric names are never escaped: they are validated and rejected when they are not plain identifiers.

Both languages share Go's double-quoted string syntax, so one quoting function serves both::

    >>> selector("node_load1", {"instance": 'a"b'})
    'node_load1{instance="a\\\\"b"}'
    >>> logql_query({"job": "nginx"}, line_filter("|=", "error"))
    '{job="nginx"} |= "error"'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

MatchOp = Literal["=", "!=", "=~", "!~"]
LineFilterOp = Literal["|=", "!=", "|~", "!~"]

MATCH_OPS: tuple[MatchOp, ...] = ("=", "!=", "=~", "!~")
LINE_FILTER_OPS: tuple[LineFilterOp, ...] = ("|=", "!=", "|~", "!~")

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
# Go's regexp.QuoteMeta set: the RE2 metacharacters. Escaping only these keeps the pattern readable in reports.
_REGEX_META = frozenset("\\.+*?()|[]{}^$")
_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b"}
_SIMPLE_ESCAPES |= {"\f": "\\f", "\v": "\\v"}
_SURROGATES = re.compile("[\ud800-\udfff]")

MAX_VALUE_CHARS = 16_384


class SelectorError(ValueError):
    """A selector cannot be built: a name is not an identifier, an operator is unknown, or no matcher selects."""


def quote(value: str) -> str:
    """Return ``value`` as a double-quoted PromQL/LogQL string literal that parses back to exactly ``value``.

    Backslashes, quotes and control characters are escaped (Go escape syntax, which both parsers use). Lone UTF-16
    surrogates, which cannot be encoded as UTF-8 and therefore cannot occur in a stored label, become U+FFFD.
    Values longer than :data:`MAX_VALUE_CHARS` are refused rather than truncated, since a truncated value would
    silently match something else.
    """
    if len(value) > MAX_VALUE_CHARS:
        raise SelectorError(f"value of {len(value)} characters exceeds the limit of {MAX_VALUE_CHARS}")
    value = _SURROGATES.sub("\ufffd", value)
    out: list[str] = ['"']
    for char in value:
        escaped = _SIMPLE_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " " or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def regex_escape(value: str) -> str:
    """Escape RE2 metacharacters so the pattern matches ``value`` literally (Go's ``regexp.QuoteMeta``).

    Prometheus and Loki anchor label regexes, so ``regex_escape(v)`` used with ``=~`` matches exactly ``v``.
    """
    return "".join("\\" + char if char in _REGEX_META else char for char in value)


def any_of(values: Iterable[str]) -> str:
    """A regex that matches exactly one of ``values`` (each escaped), for ``=~`` matchers over several values."""
    escaped = sorted({regex_escape(value) for value in values})
    if not escaped:
        raise SelectorError("any_of() needs at least one value")
    return "|".join(escaped)


def check_label_name(name: str) -> str:
    """Return ``name`` if it is a valid label name, else raise :class:`SelectorError` (names are never escaped)."""
    if not _LABEL_NAME.match(name):
        raise SelectorError(f"{name[:64]!r} is not a valid label name")
    return name


def check_metric_name(name: str) -> str:
    """Return ``name`` if it is a valid metric name, else raise :class:`SelectorError`."""
    if not _METRIC_NAME.match(name):
        raise SelectorError(f"{name[:64]!r} is not a valid metric name")
    return name


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. ``value`` is the literal value for ``=``/``!=`` and a regex for ``=~``/``!~``.

    Build regex matchers from untrusted input with :meth:`literal_regex` or :func:`any_of`, never by formatting.
    """

    name: str
    value: str
    op: MatchOp = "="

    @classmethod
    def literal_regex(cls, name: str, value: str, *, negate: bool = False) -> Matcher:
        """A regex matcher that matches exactly the literal ``value`` (metacharacters escaped)."""
        return cls(name, regex_escape(value), "!~" if negate else "=~")

    def render(self) -> str:
        """The matcher as query text: ``name<op>"value"`` with the value quoted."""
        if self.op not in MATCH_OPS:
            raise SelectorError(f"unknown matcher operator {self.op!r}")
        return f"{check_label_name(self.name)}{self.op}{quote(self.value)}"

    @property
    def selects(self) -> bool:
        """Whether this matcher narrows to streams that have the label (Loki needs at least one such matcher)."""
        if self.op == "=":
            return self.value != ""
        if self.op == "=~":
            return re.fullmatch(_py_regex(self.value), "") is None
        return False


def _py_regex(pattern: str) -> str:
    # RE2 and Python agree on the escapes QuoteMeta produces; anything Python cannot compile is treated as
    # possibly matching the empty string, which errs on the side of refusing the selector.
    try:
        re.compile(pattern)
    except re.error:
        return ""
    return pattern


def _matchers(labels: Mapping[str, str] | None, matchers: Sequence[Matcher]) -> list[Matcher]:
    result = [Matcher(name, value) for name, value in (labels or {}).items()]
    result.extend(matchers)
    return result


def selector(
    metric: str | None = None,
    labels: Mapping[str, str] | None = None,
    matchers: Sequence[Matcher] = (),
) -> str:
    """Build a PromQL instant-vector selector: ``metric{name="value",…}``.

    ``labels`` are exact matches; ``matchers`` add any other operator. Without a metric name, Prometheus requires
    at least one matcher that does not match the empty string, so that case is refused here with a clear message.
    """
    all_matchers = _matchers(labels, matchers)
    body = ",".join(m.render() for m in all_matchers)
    if metric is None:
        if not any(m.selects for m in all_matchers):
            raise SelectorError("a selector without a metric name needs a matcher that does not match empty")
        return "{" + body + "}"
    check_metric_name(metric)
    return f"{metric}{{{body}}}" if body else metric


def logql_selector(labels: Mapping[str, str] | None = None, matchers: Sequence[Matcher] = ()) -> str:
    """Build a LogQL stream selector ``{name="value",…}``.

    Loki rejects selectors without a matcher that selects (``{}``, only negative or empty-matching ones), and a
    query over every stream is exactly the unbounded work we refuse, so the same rule is enforced here.
    """
    all_matchers = _matchers(labels, matchers)
    if not any(m.selects for m in all_matchers):
        raise SelectorError("a LogQL selector needs at least one = or =~ matcher that does not match empty")
    return "{" + ",".join(m.render() for m in all_matchers) + "}"


def line_filter(op: LineFilterOp, text: str) -> str:
    """A LogQL line filter: ``|= "text"``, ``!= "text"``, ``|~ "regex"`` or ``!~ "regex"``.

    For ``|~``/``!~`` pass a regex you built (for a literal, use :func:`regex_escape`); the text is always quoted.
    """
    if op not in LINE_FILTER_OPS:
        raise SelectorError(f"unknown line filter operator {op!r}")
    return f"{op} {quote(text)}"


def logql_query(
    labels: Mapping[str, str] | None = None,
    *filters: str,
    matchers: Sequence[Matcher] = (),
    parser: Literal["json", "logfmt"] | None = None,
) -> str:
    """A LogQL log query: stream selector, then line filters built by :func:`line_filter`, then an optional parser."""
    parts = [logql_selector(labels, matchers), *filters]
    if parser is not None:
        parts.append(f"| {parser}")
    return " ".join(parts)


def duration(seconds: float) -> str:
    """A PromQL/LogQL duration literal for ``seconds`` (rounded up to whole seconds, at least ``1s``)."""
    total = max(1, int(-(-seconds // 1)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total % size == 0:
            return f"{total // size}{unit}"
    return f"{total}s"
