"""``sre-triage ingest``: index runbooks/ and EXTRA_DOCS_DIRS into the runbook index (incremental)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from triage.settings import load_settings

# The index holds vectors of another embedding model: `--rebuild` re-embeds everything (scripts/run.sh does so
# for the local model, where that costs seconds).
EXIT_MODEL_MISMATCH = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rebuild", action="store_true", help="drop the index and re-embed everything (after changing the model)"
    )
    parser.add_argument(
        "--dir", action="append", type=Path, default=None, metavar="DIR",
        help="index these folders instead of RUNBOOKS_DIR and EXTRA_DOCS_DIRS (repeatable)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    parser.add_argument(
        "--rebuild-on-model-change", action="store_true",
        help="when the index was built with another embedding model, re-embed everything instead of exiting with 3",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from tools.errors import SourceError
    from tools.runbooks.collection import IndexModelMismatch, make_client
    from tools.runbooks.ingest import IngestSummary, ingest_blocking
    from triage.runbook_index import make_embedder_from_settings

    knowledge = load_settings().knowledge
    roots = args.dir or [knowledge.runbooks_dir, *knowledge.extra_dirs]
    missing = [str(r) for r in roots if not Path(r).is_dir()]
    for root in missing:
        print(f"sre-triage ingest: {root} is not a folder; skipped", file=sys.stderr)
    embedder = make_embedder_from_settings(knowledge)

    def ingest(client: Any, rebuild: bool) -> IngestSummary:
        return ingest_blocking(
            client,
            embedder,
            [Path(r) for r in roots],
            rebuild=rebuild,
            progress=False if args.no_progress else None,
            on_message=lambda m: print(m, file=sys.stderr),
        )

    try:
        client = make_client(None if knowledge.chroma_url else knowledge.chroma_dir, knowledge.chroma_url)
        try:
            summary = ingest(client, args.rebuild)
        except IndexModelMismatch as exc:
            if not args.rebuild_on_model_change:
                raise
            # an unattended start (compose) after an upgrade that changed the model: the old vectors are useless
            print(f"sre-triage ingest: {exc.stored!r} → {exc.configured!r}: re-embedding everything", file=sys.stderr)
            summary = ingest(client, True)
    except IndexModelMismatch as exc:
        print(f"sre-triage ingest: {exc}", file=sys.stderr)
        return EXIT_MODEL_MISMATCH
    except SourceError as exc:
        print(f"sre-triage ingest: {exc}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0
