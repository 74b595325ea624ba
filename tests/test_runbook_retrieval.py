"""Retrieval through a real ingested index with the bundled ONNX model (kept small: the machine has 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reports.models import Alert, AlertStatus, RunbookMatch
from tools.runbooks.collection import make_client
from tools.runbooks.embeddings import OnnxMiniLmEmbedding
from tools.runbooks.index import SECTION_B, RunbookIndex, descriptive_sections, query_for_alert, section_texts
from tools.runbooks.ingest import ingest_blocking
from tools.runbooks.keywords import KeywordIndex
from triage.pipeline.runbook_matches import RunbookMatcher

REPO = Path(__file__).resolve().parent.parent

DISK = """---
title: Disk filling up or inode exhaustion
alerts: [HostOutOfDiskSpace, HostOutOfInodes]
tags: [disk]
---
# Disk filling up or inode exhaustion

## Diagnosis

Find what grew: `du -xh --max-depth=2 /` and `df -hT`. Compare with the last week in Grafana.

## Inode exhaustion

Millions of small files (mail queues, PHP sessions, container layers) use up inodes while bytes remain.
Count files per directory with `find / -xdev -type f | cut -d/ -f2 | sort | uniq -c`.

## Escalation

Ask the owner of the service before deleting data.
"""

UPS = """---
title: UPS on battery
alerts: [UpsOnBattery, UpsLowBattery]
---
# UPS on battery

## Diagnosis

`upsc rack-ups@localhost` shows `ups.status` OB (on battery) or LB (low battery) and the remaining runtime.

## Power restored

After mains power returns, check that every node rejoined the cluster and guests with onboot started.
"""

DNS = """---
title: DNS resolution failing
alerts: [DnsProbeFailed]
---
# DNS resolution failing

## Diagnosis

Query the resolver directly: `dig @10.0.0.53 example.org`. SERVFAIL for every name points at upstream or DNSSEC.

## Remediation

Restart unbound, check the clock (DNSSEC fails when time drifts), flush the Pi-hole cache.
"""


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    docs = tmp_path_factory.mktemp("runbooks") / "runbooks"
    docs.mkdir()
    for name, text in {"disk-filling.md": DISK, "ups-on-battery.md": UPS, "dns-failure.md": DNS}.items():
        (docs / name).write_text(text)
    target = tmp_path_factory.mktemp("index")
    summary = ingest_blocking(make_client(target), OnnxMiniLmEmbedding(), [docs], progress=False)
    assert summary.chunks_total == 7
    yield target


@pytest.fixture(scope="module")
def index(index_dir: Path) -> RunbookIndex:
    return RunbookIndex(OnnxMiniLmEmbedding(), chroma_dir=index_dir)


def alert(name: str, annotations: dict[str, str] | None = None, **labels: str) -> Alert:
    return Alert(
        fingerprint="f" * 16,
        alertname=name,
        status=AlertStatus.firing,
        labels={"alertname": name, **labels},
        annotations=annotations or {},
        starts_at=datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
    )


async def test_paraphrased_question_finds_the_section_that_answers_it(index: RunbookIndex) -> None:
    result = await index.search("too many tiny files, no free inodes although df shows space", limit=3)
    top = result.hits[0]
    assert (top.source, top.section, top.anchor) == ("runbooks/disk-filling.md", "Inode exhaustion", "inode-exhaustion")
    assert top.title == "Disk filling up or inode exhaustion"
    assert "small files" in top.excerpt and "Alerts:" not in top.excerpt


async def test_vector_retrieval_alone_understands_meaning_without_shared_words(index: RunbookIndex) -> None:
    result = await index.search("electricity came back on after the blackout", limit=1, mode="vector")
    assert (result.hits[0].source, result.hits[0].section) == ("runbooks/ups-on-battery.md", "Power restored")


async def test_alert_name_declared_in_front_matter_ranks_its_runbook_first(index: RunbookIndex) -> None:
    dns = alert("DnsProbeFailed", {"summary": "probe failed"}, job="blackbox")
    result = await index.search_alert(dns.alertname, dns.labels, dns.annotations)
    assert result.hits[0].source == "runbooks/dns-failure.md"


async def test_runbook_url_annotation_pins_the_linked_section_first(index: RunbookIndex) -> None:
    linked = alert(
        "HostOutOfDiskSpace",
        {
            "summary": "Disk almost full on /var",
            "runbook_url": "https://git.example.org/ops/sre-triage/src/branch/main/runbooks/ups-on-battery.md#power-restored",
        },
        mountpoint="/var",
    )
    matches = await RunbookMatcher(index, "https://git.example.org/ops/blob/main").matches_for_alert(linked, limit=3)
    assert isinstance(matches[0], RunbookMatch)
    assert (matches[0].source, matches[0].section) == ("runbooks/ups-on-battery.md", "Power restored")
    assert matches[0].url == "https://git.example.org/ops/blob/main/runbooks/ups-on-battery.md#power-restored"
    assert matches[1].source == "runbooks/disk-filling.md"
    assert len({(m.source, m.section) for m in matches}) == len(matches)


async def test_runbook_url_to_an_unindexed_page_is_ignored(index: RunbookIndex) -> None:
    inodes = alert("HostOutOfInodes", {"runbook_url": "https://wiki.example.org/Some_Other_Page"}, mountpoint="/")
    result = await index.search_alert(inodes.alertname, inodes.labels, inodes.annotations)
    assert not any(h.pinned for h in result.hits)
    assert result.hits[0].source == "runbooks/disk-filling.md"


async def test_tool_text_lists_sections_with_their_links(index: RunbookIndex) -> None:
    text = await index.runbook_search("SERVFAIL dnssec", limit=2)
    assert text.startswith("[1] DNS resolution failing — ")
    assert "(runbooks/dns-failure.md#" in text


async def test_readiness_counts_without_embedding(index: RunbookIndex) -> None:
    assert await index.count() == 7
    assert await index.ping() is True


def test_query_for_alert_uses_name_words_summary_and_key_labels_only() -> None:
    inodes = alert(
        "HostOutOfInodes",
        {"summary": "Inodes low on /srv", "description": "below 10 %"},
        instance="10.0.0.5:9100",
        mountpoint="/srv",
        job="node",
    )
    query = query_for_alert(inodes.alertname, inodes.labels, inodes.annotations)
    assert query.splitlines() == [
        "HostOutOfInodes",
        "Host Out Of Inodes",
        "Inodes low on /srv",
        "below 10 %",
        "job node",
        "mountpoint /srv",
    ]


def test_a_fresh_process_searches_the_index_through_the_cli(index_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDDINGS_", "CHROMA_"))}
    env["CHROMA_DIR"] = str(index_dir)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "triage.cli.main",
            "search",
            "UPS",
            "low",
            "battery",
            "runtime",
            "--json",
            "--limit",
            "2",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    assert data["reason"] is None
    assert [h["source"] for h in data["hits"]] == ["runbooks/ups-on-battery.md"] * 2
    assert data["hits"][0]["section"] == "Diagnosis"


def _split_section_fixture() -> tuple[list[str], dict[str, dict[str, Any]], dict[str, str]]:
    """One long Remediation section split into three chunks (one fix each) and a short Symptoms section."""
    chunks = [
        ("c0", "Symptoms", 0, "Pushes are rejected: the agent logs rejected entries, and more rejected entries."),
        ("c1", "Remediation", 1, "Rejected entries: raise the ingestion rate limit."),
        ("c2", "Remediation", 2, "Timestamp too new: fix the clock with chrony."),
        ("c3", "Remediation", 3, "Journal permission denied: add the agent user to systemd-journal."),
    ]
    metas: dict[str, dict[str, Any]] = {}
    docs: dict[str, str] = {}
    for cid, section, ordinal, body in chunks:
        prefix = f"Loki ingestion > {section}\n\n"
        metas[cid] = {
            "source": "runbooks/loki.md",
            "section": section,
            "anchor": section.lower(),
            "ordinal": ordinal,
            "section_path": f"Loki ingestion > {section}",
            "alerts": "LokiRequestErrors",
            "body_offset": len(prefix),
        }
        docs[cid] = prefix + body
    return [c[0] for c in reversed(chunks)], metas, docs


def test_section_keyword_text_joins_a_split_sections_chunks_under_its_first_chunk() -> None:
    ids, metas, docs = _split_section_fixture()
    section_ids, texts = section_texts(ids, metas, docs)
    assert section_ids == ["c0", "c1"]
    assert texts[1].splitlines()[:2] == ["Loki ingestion > Remediation", "LokiRequestErrors"]
    assert "rate limit" in texts[1] and "chrony" in texts[1] and "systemd-journal" in texts[1]
    assert "Loki ingestion > " not in texts[1].split("\n", 2)[2]  # bodies only, without the embedded prefix


def test_section_keywords_rank_a_split_section_by_all_of_its_chunks_together() -> None:
    ids, metas, docs = _split_section_fixture()
    section_ids, texts = section_texts(ids, metas, docs)
    sections = KeywordIndex(section_ids, texts, b=SECTION_B)
    spread = sections.search("rejected entries, clock skew, journal permission", 2)
    assert [cid for cid, _ in spread] == ["c1", "c0"]
    assert spread[0][1] > 2 * spread[1][1]
    assert sections.search("pushes rejected by the agent logs", 1)[0][0] == "c0"


NFS = """---
title: NFS share unavailable
alerts: [NfsMountStale]
---
# NFS share unavailable

Shares from the NAS used by guests and backups.

## Symptoms

The NFS share hangs: `df` hangs and guests log stale file handle errors.

## Diagnosis

Stale file handle errors on the NFS share: run `showmount -e nas` and `rpcinfo -p nas` and compare the exports.
"""


def test_descriptive_sections_are_the_introduction_and_symptoms_of_structured_runbooks() -> None:
    def meta(source: str, section: str, path: str, kind: str = "markdown") -> dict[str, Any]:
        return {"source": source, "section": section, "anchor": section.lower(), "section_path": path, "kind": kind}

    metas = {
        "a0": meta("runbooks/nfs.md", "NFS share unavailable", "NFS share unavailable"),
        "a1": meta("runbooks/nfs.md", "Symptoms", "NFS share unavailable > Symptoms"),
        "a2": meta("runbooks/nfs.md", "Diagnosis", "NFS share unavailable > Diagnosis"),
        "b0": meta("notes/one-section.md", "Restart the proxy", "Restart the proxy"),
        "c0": meta("ansible/site.yml", "site.yml", "site.yml", kind="ansible"),
        "c1": meta("ansible/site.yml", "Restart nginx", "site.yml > Restart nginx", kind="ansible"),
    }
    assert descriptive_sections(metas) == {
        ("runbooks/nfs.md", "nfs share unavailable"),
        ("runbooks/nfs.md", "symptoms"),
    }


async def test_diagnosis_outranks_symptoms_that_share_the_same_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "runbooks"
    docs.mkdir()
    (docs / "nfs.md").write_text(NFS)
    client = make_client(tmp_path / "index")
    ingest_blocking(client, OnnxMiniLmEmbedding(), [docs], progress=False)
    index = RunbookIndex(OnnxMiniLmEmbedding(), client=client)
    query = "nfs share stale file handle errors"
    monkeypatch.setattr("tools.runbooks.index.DESCRIPTIVE_WEIGHT", 1.0)
    assert (await index.search(query, limit=3)).hits[0].section != "Diagnosis"  # without the weight
    monkeypatch.undo()
    hits = (await index.search(query, limit=3)).hits
    assert [h.section for h in hits] == ["Diagnosis", "Symptoms", "NFS share unavailable"]
