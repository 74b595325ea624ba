"""The evidence as the LLM sees it: a compact view of each item, and the top items that fit a token budget.

The view leaves out what the model would read twice: a clause of the detail that repeats the title (a log item's
``pattern: …`` is its title's line with ``<n>`` placeholders, and JSON-escaped placeholders cost several tokens each)
is dropped, and so is a clause giving the item's offset from the alert start in words, so the model reads each fact
once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from reports.models import Evidence
from triage.analysis.tokens import count_tokens

PROMPT_DETAIL_CHARS = 600
PROMPT_TITLE_CHARS = 200
# the columns of an evidence row as the model reads them (:func:`evidence_row`); the instructions name them once
EVIDENCE_COLUMNS = ("id", "kind", "title", "score", "offset_min", "detail")
# a detail clause is dropped when this share of its words is in the title already (and it has a few words at all)
REPEAT_SHARE = 0.8
REPEAT_MIN_WORDS = 3
_PLACEHOLDER = re.compile(r"<[^<>\s]{1,16}>")
_WORD = re.compile(r"\w+")
# "pattern: …", "sample line: …": a short label before the clause's text
_LABEL = re.compile(r"^[A-Za-z][\w ]{0,24}: ")
# "left its usual range at -17 min from the alert start": the item's own offset, which the view gives as a number
_OFFSET = re.compile(r"^(?:[a-z][a-z ]{0,40} at )?([+-]?\d+) min from the alert start$")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _words(text: str) -> list[str]:
    return _WORD.findall(_PLACEHOLDER.sub(" ", text).lower())


def _repeats(clause: str, title_words: set[str]) -> bool:
    words = _words(_LABEL.sub("", clause, count=1))
    if len(words) < REPEAT_MIN_WORDS:
        return False
    return sum(1 for w in words if w in title_words) >= REPEAT_SHARE * len(words)


def _restates_offset(clause: str, offset_min: float | None) -> bool:
    found = _OFFSET.match(clause)
    return found is not None and offset_min is not None and int(found.group(1)) == round(offset_min)


def unrepeated_detail(title: str, detail: str, offset_min: float | None = None) -> str:
    """``detail`` without the clauses (``; ``-separated) that say again what ``title`` says, or the item's offset."""
    title_words = set(_words(title))
    return "; ".join(
        c for c in detail.split("; ") if not _repeats(c, title_words) and not _restates_offset(c, offset_min)
    )


def prompt_view(item: Evidence, starts_at: datetime) -> dict[str, Any]:
    """The compact form of an item the LLM sees: id, what, when relative to the alert, how strong.

    Not its source: the kind and the title say what was observed, and the source's name costs every item tokens.
    """
    view: dict[str, Any] = {
        "id": item.id,
        "kind": item.kind,
        "title": _clip(item.title, PROMPT_TITLE_CHARS),
        "score": round(item.score, 2),
    }
    if item.at is not None:
        view["offset_min"] = round((item.at - starts_at).total_seconds() / 60.0, 1)
    detail = unrepeated_detail(item.title, item.detail, view.get("offset_min")) if item.detail else ""
    if detail:
        view["detail"] = _clip(detail, PROMPT_DETAIL_CHARS)
    return view


def evidence_row(view: dict[str, Any]) -> list[Any]:
    """A view as one row of :data:`EVIDENCE_COLUMNS` (no offset: null; no detail: the row ends before it).

    Rows instead of objects: the instructions name the columns once, so the keys are not read again on every line.
    """
    row = [view.get(column) for column in EVIDENCE_COLUMNS]
    return row if row[-1] is not None else row[:-1]


def row_view(row: list[Any]) -> dict[str, Any]:
    """An evidence row read back as a view (what :func:`evidence_row` was given, without its empty fields)."""
    return {k: v for k, v in zip(EVIDENCE_COLUMNS, row, strict=False) if v is not None}


def view_tokens(view: dict[str, Any]) -> int:
    """Tokens the view costs in the prompt, as its row."""
    return count_tokens(json.dumps(evidence_row(view), ensure_ascii=False))


def select_for_prompt(evidence: Iterable[Evidence], token_budget: int, starts_at: datetime) -> list[Evidence]:
    """The highest-ranked items whose prompt views fit ``token_budget`` (input order is rank order)."""
    chosen: list[Evidence] = []
    used = 0
    for item in evidence:
        cost = view_tokens(prompt_view(item, starts_at))
        if used + cost > token_budget:
            continue  # a smaller item further down may still fit
        chosen.append(item)
        used += cost
    return chosen
