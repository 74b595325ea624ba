"""Whether a log line only says again what the alert already says.

An alert on a log line is not explained by that line: it is the symptom, which the alert signal already shows. When
the rule is a LogQL query, a line of the target that passes every one of its positive line filters (``|= "finished
with errors"``, ``|~ "panic|fatal"``) stays in the report weighed as the symptom, so that what led to it can rank
above it.

A line that only shares a subject with a PromQL rule (an OOM-kill line for an alert on ``node_vmstat_oom_kill``) is
not treated so: it names what was killed and why, which the counter does not.
"""

from __future__ import annotations

import re

# LogQL line filters: |= "text", |~ "regex", with double quotes or backticks; != and !~ exclude and are not needed
_LINE_FILTER = re.compile(r'\|([=~])\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`)')
_ESCAPE = re.compile(r"\\(.)")


def rule_line_filters(logql: str) -> list[tuple[str, str]]:
    """The positive line filters of a LogQL query as ``(op, text)``: ``=`` a substring, ``~`` a regular expression."""
    found: list[tuple[str, str]] = []
    for match in _LINE_FILTER.finditer(logql):
        op, quoted, raw = match.groups()
        found.append((op, _ESCAPE.sub(r"\1", quoted) if quoted is not None else raw))
    return found


def _passes(line: str, op: str, text: str) -> bool:
    if op == "=":
        return text in line
    try:
        return re.search(text, line) is not None
    except re.error:
        return False  # a filter Python cannot read (RE2 syntax) decides nothing


def restates(line: str, logql: str | None) -> bool:
    """Whether ``line`` is what the alert's LogQL query counts (it passes every positive line filter)."""
    filters = rule_line_filters(logql) if logql else []
    return bool(filters) and all(_passes(line, op, text) for op, text in filters)
