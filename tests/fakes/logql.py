"""An independent parser for the LogQL subset the Loki fake serves, written from Loki's grammar (not from ours).

Supported: stream selectors with ``=``, ``!=``, ``=~``, ``!~``; line filters ``|=``, ``!=``, ``|~``, ``!~``;
the ``| json`` and ``| logfmt`` stages (accepted, no effect on lines); range aggregations ``count_over_time`` and
``rate`` over ``[duration]``; and ``sum``/``count``/``max``/``min``/``avg`` with ``by``/``without`` around them.
Strings are Go double-quoted or backtick raw strings. Anything else is a parse error with Loki's message shape,
so code that relies on syntax the fake does not know fails loudly.

It also serves the property tests: parsing what :mod:`tools.selectors` builds must give back exactly the matchers
and filters that were meant, whatever the label values contain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = ("sum", "count", "max", "min", "avg")
RANGE_FUNCTIONS = ("count_over_time", "rate")
_DURATION = re.compile(r"(\d+(?:ms|s|m|h|d|w|y))+")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}

EMPTY_COMPATIBLE = (
    "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible "
    'value. For instance, app=~".*" does not meet this requirement, but app=~".+" will'
)


class LogQLParseError(ValueError):
    """A query Loki would reject with 400; ``str()`` is Loki's message."""


@dataclass(frozen=True)
class LabelMatcher:
    name: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual, re.DOTALL) is not None
        return hit if self.op == "=~" else not hit

    @property
    def empty_compatible(self) -> bool:
        return self.matches({})


@dataclass(frozen=True)
class LineFilter:
    op: str
    text: str

    def keeps(self, line: str) -> bool:
        if self.op == "|=":
            return self.text in line
        if self.op == "!=":
            return self.text not in line
        hit = re.search(self.text, line) is not None
        return hit if self.op == "|~" else not hit


@dataclass
class LogQuery:
    matchers: list[LabelMatcher]
    filters: list[LineFilter] = field(default_factory=list)
    parsers: list[str] = field(default_factory=list)

    def selects(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def keeps(self, line: str) -> bool:
        return all(f.keeps(line) for f in self.filters)


@dataclass
class MetricQuery:
    function: str
    inner: LogQuery
    range_s: float
    aggregation: str | None = None
    grouping: tuple[str, ...] | None = None
    without: bool = False


@dataclass
class _Token:
    kind: str  # ident, string, duration, number, op, punct, eof
    text: str
    col: int
    value: str = ""


_OPS = ("=~", "!~", "!=", "|=", "|~", "=", "|")


def go_unquote(body: str, col: int) -> str:
    """Decode the inside of a Go double-quoted string (the escapes strconv.Unquote accepts)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _SIMPLE:
            out.append(_SIMPLE[nxt])
            i += 2
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise LogQLParseError(f"parse error at line 1, col {col}: invalid char escape")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif nxt in "01234567":
            digits = body[i + 1 : i + 4]
            if not re.fullmatch(r"[0-7]{3}", digits):
                raise LogQLParseError(f"parse error at line 1, col {col}: invalid char escape")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise LogQLParseError(f"parse error at line 1, col {col}: invalid char escape")
    return "".join(out)


def _lex_string(query: str, i: int) -> _Token:
    col = i + 1
    if query[i] == "`":
        j = query.find("`", i + 1)
        if j < 0:
            raise LogQLParseError(f"parse error at line 1, col {col}: literal not terminated")
        return _Token("string", query[i : j + 1], col, query[i + 1 : j])
    j = i + 1
    while j < len(query) and query[j] not in '"\n':
        j += 2 if query[j] == "\\" else 1
    if j >= len(query) or query[j] != '"':
        raise LogQLParseError(f"parse error at line 1, col {col}: literal not terminated")
    return _Token("string", query[i : j + 1], col, go_unquote(query[i + 1 : j], col))


def tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(query):
        char = query[i]
        col = i + 1
        if char in " \t\r\n":
            i += 1
        elif char in '"`':
            token = _lex_string(query, i)
            tokens.append(token)
            i += len(token.text)
        elif char in "{}()[],":
            tokens.append(_Token("punct", char, col))
            i += 1
        elif char in "=!|":
            op = next((o for o in _OPS if query.startswith(o, i)), None)
            if op is None:
                raise LogQLParseError(f"parse error at line 1, col {col}: syntax error: unexpected {char}")
            tokens.append(_Token("op", op, col))
            i += len(op)
        elif match := _DURATION.match(query, i):
            tokens.append(_Token("duration", match.group(), col))
            i = match.end()
        elif match := re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(query, i):
            tokens.append(_Token("ident", match.group(), col))
            i = match.end()
        else:
            raise LogQLParseError(f"parse error at line 1, col {col}: syntax error: unexpected {char}")
    tokens.append(_Token("eof", "", len(query) + 1))
    return tokens


class _Parser:
    def __init__(self, query: str) -> None:
        self.tokens = tokenize(query)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self, token: _Token, expecting: str | None = None) -> LogQLParseError:
        shown = token.text or "$end"
        suffix = f", expecting {expecting}" if expecting else ""
        return LogQLParseError(f"parse error at line 1, col {token.col}: syntax error: unexpected {shown}{suffix}")

    def expect(self, text: str) -> _Token:
        token = self.take()
        if token.text != text:
            raise self.fail(token, text)
        return token

    def query(self) -> LogQuery | MetricQuery:
        first = self.peek()
        result: LogQuery | MetricQuery
        if first.kind == "ident" and first.text in AGGREGATIONS:
            result = self.aggregation()
        elif first.kind == "ident" and first.text in RANGE_FUNCTIONS:
            result = self.range_aggregation()
        else:
            result = self.log_query()
        end = self.take()
        if end.kind != "eof":
            raise self.fail(end)
        return result

    def grouping(self) -> tuple[tuple[str, ...], bool]:
        without = self.take().text == "without"
        self.expect("(")
        names: list[str] = []
        while self.peek().text != ")":
            token = self.take()
            if token.kind != "ident":
                raise self.fail(token, "IDENTIFIER")
            names.append(token.text)
            if self.peek().text == ",":
                self.take()
        self.expect(")")
        return tuple(names), without

    def aggregation(self) -> MetricQuery:
        name = self.take().text
        grouping: tuple[str, ...] | None = None
        without = False
        if self.peek().text in ("by", "without"):
            grouping, without = self.grouping()
        self.expect("(")
        inner = self.range_aggregation()
        self.expect(")")
        if grouping is None and self.peek().text in ("by", "without"):
            grouping, without = self.grouping()
        inner.aggregation, inner.grouping, inner.without = name, grouping, without
        return inner

    def range_aggregation(self) -> MetricQuery:
        function = self.take().text
        self.expect("(")
        inner = self.log_query()
        self.expect("[")
        token = self.take()
        if token.kind != "duration":
            raise self.fail(token, "DURATION")
        self.expect("]")
        self.expect(")")
        seconds = sum(int(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(token.text))
        return MetricQuery(function, inner, float(seconds))

    def matcher(self) -> LabelMatcher:
        name = self.take()
        if name.kind != "ident":
            raise self.fail(name, "IDENTIFIER")
        op = self.take()
        if op.text not in ("=", "!=", "=~", "!~"):
            raise self.fail(op, "EQ")
        value = self.take()
        if value.kind != "string":
            raise self.fail(value, "STRING")
        if op.text in ("=~", "!~"):
            _compile(value.value, value.col)
        return LabelMatcher(name.text, op.text, value.value)

    def stage(self, query: LogQuery) -> None:
        op = self.take()
        if op.text == "|":
            stage = self.take()
            if stage.text not in ("json", "logfmt"):
                raise self.fail(stage)
            query.parsers.append(stage.text)
            return
        if op.text not in ("|=", "!=", "|~", "!~"):
            raise self.fail(op)
        text = self.take()
        if text.kind != "string":
            raise self.fail(text, "STRING")
        if op.text in ("|~", "!~"):
            _compile(text.value, text.col)
        query.filters.append(LineFilter(op.text, text.value))

    def log_query(self) -> LogQuery:
        self.expect("{")
        matchers = [self.matcher()]
        while (sep := self.take()).text != "}":
            if sep.text != ",":
                raise self.fail(sep, "}")
            matchers.append(self.matcher())
        if all(m.empty_compatible for m in matchers):
            raise LogQLParseError(EMPTY_COMPATIBLE)
        query = LogQuery(matchers)
        while self.peek().kind == "op":
            self.stage(query)
        return query


def _compile(pattern: str, col: int) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise LogQLParseError(f"parse error at line 1, col {col}: error parsing regexp: {exc}") from exc


def parse(query: str) -> LogQuery | MetricQuery:
    """Parse a LogQL query of the supported subset or raise :class:`LogQLParseError` with Loki's message."""
    return _Parser(query).query()


def parse_selector(query: str) -> LogQuery:
    """Parse a bare stream selector (the ``match[]`` and ``query`` arguments of the series and values APIs)."""
    parsed = parse(query)
    if not isinstance(parsed, LogQuery) or parsed.filters or parsed.parsers:
        raise LogQLParseError("only label matchers are supported")
    return parsed


def duration_s(text: str) -> float:
    """Seconds of a Loki duration (``5m``, ``1h30m``) or a plain number of seconds (``15``, ``0.5``)."""
    if _DURATION.fullmatch(text):
        return float(sum(int(n) * _UNIT_S[u] for n, u in _DURATION_PART.findall(text)))
    return float(text)
