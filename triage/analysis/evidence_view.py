"""The evidence as the LLM sees it: a compact view of each item, and the top items that fit a token budget."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from reports.models import Evidence
from triage.analysis.tokens import count_tokens

PROMPT_DETAIL_CHARS = 600
PROMPT_TITLE_CHARS = 200


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prompt_view(item: Evidence, starts_at: datetime) -> dict[str, Any]:
    """The compact form of an item the LLM sees: id, what, when relative to the alert, how strong."""
    view: dict[str, Any] = {
        "id": item.id,
        "source": item.source,
        "kind": item.kind,
        "title": _clip(item.title, PROMPT_TITLE_CHARS),
        "score": round(item.score, 2),
    }
    if item.at is not None:
        view["offset_min"] = round((item.at - starts_at).total_seconds() / 60.0, 1)
    if item.detail:
        view["detail"] = _clip(item.detail, PROMPT_DETAIL_CHARS)
    return view


def view_tokens(view: dict[str, Any]) -> int:
    return count_tokens(json.dumps(view, ensure_ascii=False))


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
