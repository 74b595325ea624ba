"""``sre-triage search QUERY``: hybrid search of the runbook index, as text or JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from triage.runbook_index import index_from_settings
from triage.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="+", help="what to look for (an alert name, symptoms, a question)")
    parser.add_argument("--limit", type=int, default=5, help="number of sections to show (default 5)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--mode", choices=("hybrid", "vector", "keyword"), default="hybrid", help="retriever (default hybrid)"
    )


def run(args: argparse.Namespace) -> int:
    from tools.errors import SourceError
    from tools.runbooks.index import RunbookIndex

    settings = load_settings()
    index = index_from_settings(settings.knowledge)
    assert isinstance(index, RunbookIndex)
    query = " ".join(args.query)
    try:
        result = asyncio.run(index.search(query, limit=max(1, args.limit), mode=args.mode))
    except SourceError as exc:
        print(f"sre-triage search: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"query": query, **result.as_dict()}, indent=2, ensure_ascii=False))
        return 0
    if not result.hits:
        print(result.reason or "no match", file=sys.stderr)
        return 0
    for i, hit in enumerate(result.hits, 1):
        link = hit.source + (f"#{hit.anchor}" if hit.anchor else "")
        print(f"{i}. {hit.title} — {hit.section}  [{hit.score:.4f}]\n   {link}\n   {hit.excerpt}\n")
    return 0
