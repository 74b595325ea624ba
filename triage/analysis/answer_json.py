"""A JSON object out of a model's text answer, and what had to be done to get it.

Small local models wrap their JSON in a Markdown code fence, add a sentence before or after it, or stop mid-object at
the output token limit. :func:`extract_object` takes the first JSON object out of such text and lists each of those
repairs in plain words, so the report can say what happened. A truncated object is closed after its last complete
member or element (the partial one is dropped), trying earlier cut points until ``accept`` takes the result.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FENCED = "the answer was wrapped in a code fence"
PROSE = "text around the JSON answer was ignored"
TRUNCATED = "the answer was cut off before its end; its JSON was closed after the last complete item"
# a truncated answer is cut back at most this many times: each try re-parses the text
MAX_CUTS = 64

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?")
_CLOSERS = {"{": "}", "[": "]"}


class NoJsonObject(ValueError):
    """The text holds no JSON object that could be used."""


@dataclass
class Extracted:
    """The parsed object and the repairs it needed (empty: the text was exactly one JSON object)."""

    value: dict[str, Any]
    repairs: list[str] = field(default_factory=list)


def _unfence(text: str) -> tuple[str, bool]:
    """The inside of the first code fence (to its closing fence, or to the end when the answer was cut)."""
    match = _FENCE.search(text)
    if match is None:
        return text, False
    rest = text[match.end() :]
    end = rest.find("```")
    return (rest if end < 0 else rest[:end]), True


def _cut_points(text: str) -> list[tuple[int, str]]:
    """Where a truncated object can be closed: before each top-level-of-its-container comma, with the closers due.

    At a comma outside strings, the member or element before it is complete; cutting there and closing every open
    bracket gives valid JSON as long as the brackets before it were well formed.
    """
    points: list[tuple[int, str]] = []
    stack: list[str] = []
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif char in "}]":
            if stack:
                stack.pop()
            # a container just closed: everything up to here is complete
            if stack:
                points.append((index + 1, "".join(reversed(stack))))
        elif char == "," and stack:
            points.append((index, "".join(reversed(stack))))
    return points


def _close_truncated(text: str, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    for end, closers in reversed(_cut_points(text)[-MAX_CUTS:]):
        try:
            value = json.loads(text[:end] + closers)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and accept(value):
            return value
    return None


def extract_object(text: str, accept: Callable[[dict[str, Any]], bool] = lambda _v: True) -> Extracted:
    """The first JSON object in ``text``; :class:`NoJsonObject` when there is none that ``accept`` takes."""
    body, fenced = _unfence(text)
    start = body.find("{")
    if start < 0:
        raise NoJsonObject("the answer holds no JSON object")
    repairs = [FENCED] if fenced else []
    outside = body[:start].strip() or (text[: text.find("```")].strip() if fenced else "")
    try:
        value, end = json.JSONDecoder().raw_decode(body, start)
    except json.JSONDecodeError:
        closed = _close_truncated(body[start:], accept)
        if closed is None:
            raise NoJsonObject("the answer's JSON is malformed") from None
        return Extracted(closed, [*repairs, *([PROSE] if outside else []), TRUNCATED])
    if not isinstance(value, dict):
        raise NoJsonObject("the answer's JSON is not an object")
    after = body[end:].strip() or (text.split("```", 2)[2].strip() if fenced and text.count("```") >= 2 else "")
    if outside or after:
        repairs.append(PROSE)
    if not accept(value):
        raise NoJsonObject("the answer's JSON does not match the expected shape")
    return Extracted(value, repairs)
