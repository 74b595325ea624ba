"""Runbook results diversified by document, and a query with no good match said as such (real model and index)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reports.models import Alert, AlertStatus
from tools.runbooks.collection import make_client
from tools.runbooks.embeddings import OnnxMiniLmEmbedding
from tools.runbooks.index import MAX_PER_DOCUMENT, RunbookHit, RunbookIndex, diversify
from tools.runbooks.ingest import ingest_blocking
from triage.agent.report_tools import RunbookSearch
from triage.pipeline.runbook_matches import RunbookMatcher

# a long bundled runbook: every section is about NFS, so in plain rank order it fills the whole top five
BUNDLED_NFS = """---
title: NFS or SMB share unavailable
alerts: [NfsShareUnavailable]
tags: [nfs, storage]
---
# NFS or SMB share unavailable

## Diagnosis

Check the NFS mount from the client: `findmnt /mnt/media`, `showmount -e nas`, `rpcinfo -p nas`.

## Stale file handle

`ls` on the NFS mount says "Stale file handle" after the NFS server rebooted or re-exported the share.
Unmount lazily with `umount -f -l` and mount the NFS share again.

## Hard versus soft mounts

A hard NFS mount blocks processes until the server returns; a soft mount returns errors and can corrupt data.

## Permissions on the NFS export

root_squash maps root on the client to nobody; check the export's maproot and the dataset ACLs of the share.

## Escalation

If the NFS server itself is down, follow the host-down runbook for the NAS.
"""

# the site's own page about the same share
SITE_NAS = """# nas01 (TrueNAS)

## Stale NFS handle on docker01

Happens every time nas01 reboots while docker01 keeps running: jellyfin shows an empty library and
`ls /mnt/media` says "Stale file handle". Stop the media stack, `umount -f -l /mnt/media && mount /mnt/media`,
start the stack again.
"""

# other bundled runbooks, so that the top five has other documents to choose from
DISK = """# Disk filling up

## Diagnosis

Find what grew with `du -xh --max-depth=2 /` and `df -hT`; compare with last week's usage in Grafana.

## Remediation

Clean the systemd journal with `journalctl --vacuum-size=500M` and prune old container images.
"""

DNS = """# DNS resolution failing

## Diagnosis

Query the resolver directly: `dig @10.0.0.53 example.org`. SERVFAIL for every name points at upstream or DNSSEC.
"""

UNRELATED = "how do I bake sourdough bread with a crispy crust"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> RunbookIndex:
    root = tmp_path_factory.mktemp("docs")
    bundled, site = root / "runbooks", root / "homelab"
    bundled.mkdir()
    site.mkdir()
    (bundled / "nfs-share.md").write_text(BUNDLED_NFS)
    (bundled / "disk-filling.md").write_text(DISK)
    (bundled / "dns-failure.md").write_text(DNS)
    (site / "nas01.md").write_text(SITE_NAS)
    client = make_client(tmp_path_factory.mktemp("index"))
    ingest_blocking(client, OnnxMiniLmEmbedding(), [bundled, site], progress=False)
    return RunbookIndex(OnnxMiniLmEmbedding(), client=client)


def hit(source: str, section: str) -> RunbookHit:
    return RunbookHit(source=source, title=source, section=section, anchor="", score=0.0, excerpt="")


def test_diversify_keeps_two_sections_per_document_in_the_top_five_and_moves_the_rest_down() -> None:
    ranked = [hit("a.md", "1"), hit("a.md", "2"), hit("a.md", "3"), hit("a.md", "4"), hit("b.md", "1"),
              hit("c.md", "1"), hit("a.md", "5"), hit("d.md", "1")]  # fmt: skip
    out = [(h.source, h.section) for h in diversify(ranked)]
    assert out[:5] == [("a.md", "1"), ("a.md", "2"), ("b.md", "1"), ("c.md", "1"), ("d.md", "1")]
    assert out[5:] == [("a.md", "3"), ("a.md", "4"), ("a.md", "5")]


def test_diversify_fills_the_top_with_one_document_when_there_is_no_other() -> None:
    ranked = [hit("a.md", "1"), hit("a.md", "2"), hit("a.md", "3"), hit("b.md", "1")]
    assert [(h.source, h.section) for h in diversify(ranked)] == [
        ("a.md", "1"), ("a.md", "2"), ("b.md", "1"), ("a.md", "3"),
    ]  # fmt: skip


NFS_ALERT = Alert(
    fingerprint="f" * 16,
    alertname="NfsShareUnavailable",
    status=AlertStatus.firing,
    labels={"alertname": "NfsShareUnavailable", "mountpoint": "/mnt/media", "instance": "docker01:9100"},
    annotations={"summary": "NFS mount /mnt/media on docker01 is stale"},
    starts_at=datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
)


async def test_a_reports_matches_show_the_sites_own_page_next_to_the_runbook_declared_for_the_alert(
    index: RunbookIndex,
) -> None:
    plain = RunbookMatcher(RunbookIndex(index.embedder, client=index._client, per_document=None))

    rank_order = await plain.matches_for_alert(NFS_ALERT, limit=5)
    matches = await RunbookMatcher(index).matches_for_alert(NFS_ALERT, limit=5)

    # in plain rank order the runbook declaring the alert fills all five places and the site's page is not shown
    assert [m.source for m in rank_order] == ["runbooks/nfs-share.md"] * 5
    assert [m.source for m in matches[:3]] == ["runbooks/nfs-share.md", "runbooks/nfs-share.md", "homelab/nas01.md"]
    assert Counter(m.source for m in matches)["runbooks/nfs-share.md"] == MAX_PER_DOCUMENT
    assert len(matches) == 5


async def test_search_and_the_ask_tool_keep_two_sections_of_one_document_in_the_top_five(index: RunbookIndex) -> None:
    query = "stale nfs handle after the nas rebooted"
    result = await index.search(query, limit=5)
    text = await index.runbook_search(query, limit=5)

    assert max(Counter(h.source for h in result.hits).values()) == MAX_PER_DOCUMENT
    assert "homelab/nas01.md" in [h.source for h in result.hits[:2]]
    assert text.count("(runbooks/nfs-share.md") == MAX_PER_DOCUMENT and "(homelab/nas01.md" in text


async def test_a_query_nothing_answers_says_so_instead_of_listing_sections(index: RunbookIndex) -> None:
    result = await index.search(UNRELATED)
    text = await index.runbook_search(UNRELATED)

    assert result.hits == []
    assert result.reason is not None and result.reason.startswith("no runbook section matches the query well")
    assert text == result.reason


async def test_a_runbook_url_is_shown_even_when_the_words_match_nothing(index: RunbookIndex) -> None:
    annotations = {"summary": UNRELATED, "runbook_url": "https://wiki.lan/runbooks/nfs-share.md#stale-file-handle"}
    result = await index.search_alert("Sourdough", {"alertname": "Sourdough"}, annotations)

    assert [(h.source, h.section, h.pinned) for h in result.hits] == [
        ("runbooks/nfs-share.md", "Stale file handle", True)
    ]


async def test_keyword_mode_has_no_similarity_to_judge_and_lists_what_shares_words(index: RunbookIndex) -> None:
    result = await index.search("maproot root_squash", mode="keyword")
    assert result.hits and result.hits[0].section == "Permissions on the NFS export"


def test_the_site_notes_of_the_benchmark_are_indexable_markdown() -> None:
    notes = Path(__file__).parent / "eval" / "homelab"
    assert len(list(notes.glob("*.md"))) >= 8


async def test_the_ask_runbook_tool_cites_diversified_sections_and_says_when_nothing_fits(index: RunbookIndex) -> None:
    tool = RunbookSearch(index)

    text, cited = await tool("stale nfs handle after the nas rebooted", limit=5)
    nothing, none_cited = await tool(UNRELATED)

    refs = [(source.ref or "").split("#")[0] for source in cited]
    assert text.count("(homelab/nas01.md") == 1
    assert refs.count("runbooks/nfs-share.md") == MAX_PER_DOCUMENT and "homelab/nas01.md" in refs
    assert nothing.startswith("no runbook section matches the query well") and none_cited == []
