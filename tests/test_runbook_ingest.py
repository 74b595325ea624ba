"""Incremental ingestion, model identity and the empty index, with a small deterministic embedding function."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from tests.support.procs import free_port, wait_port
from tools.runbooks.collection import IndexModelMismatch, make_client
from tools.runbooks.embeddings import OnnxMiniLmEmbedding
from tools.runbooks.index import EMPTY_REASON, RunbookIndex
from tools.runbooks.ingest import ingest_blocking
from triage.cli.cmd_ingest import EXIT_MODEL_MISMATCH
from triage.cli.main import main

REPO = Path(__file__).resolve().parent.parent


@register_embedding_function
class HashingEmbedding(EmbeddingFunction[Documents]):
    """Bag of hashed words in 64 dimensions: fast, deterministic, and a model identity of its own."""

    def __init__(self) -> None:
        self.calls = 0

    @staticmethod
    def name() -> str:
        return "sre-triage-test-hashing"

    @property
    def identity(self) -> str:
        return "test:hashing-64"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashingEmbedding:
        return HashingEmbedding()

    def __call__(self, input: Documents) -> Embeddings:
        self.calls += len(input)
        out: Embeddings = []
        for text in input:
            vec = np.zeros(64, dtype=np.float32)
            for word in re.findall(r"\w+", text.lower()):
                vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
            out.append(vec / max(float(np.linalg.norm(vec)), 1e-9))
        return out


def runbook(title: str, sections: dict[str, str], alerts: tuple[str, ...] = ()) -> str:
    front = f"---\ntitle: {title}\nalerts: [{', '.join(alerts)}]\n---\n\n" if alerts else ""
    body = "".join(f"## {name}\n\n{text}\n\n" for name, text in sections.items())
    return f"{front}# {title}\n\n{body}"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "runbooks"
    root.mkdir()
    (root / "disk.md").write_text(
        runbook("Disk full", {"Diagnosis": "Run df -h and du.", "Remediation": "Clean the journal."}, ("HostDiskFull",))
    )
    (root / "ups.md").write_text(runbook("UPS on battery", {"Diagnosis": "upsc rack-ups", "Escalation": "Call."}))
    (root / "README.md").write_text("<!-- not-a-runbook -->\n# About these runbooks\n")
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_first_ingest_adds_every_runbook_and_skips_the_readme(docs: Path, tmp_path: Path) -> None:
    client = make_client(tmp_path / "index")
    messages: list[str] = []
    summary = ingest_blocking(client, HashingEmbedding(), [docs], progress=False, on_message=messages.append)
    assert (summary.seen, summary.added, summary.skipped) == (3, 2, 1)
    assert summary.chunks_written == summary.chunks_total == 4
    assert messages == [f"skipped {docs / 'README.md'}: marked <!-- not-a-runbook -->"]
    assert "3 files seen, 2 added, 0 changed, 0 removed, 0 unchanged, 1 skipped; 4 chunks written" in summary.line()


def test_reingest_skips_unchanged_replaces_changed_and_drops_deleted(docs: Path, tmp_path: Path) -> None:
    client = make_client(tmp_path / "index")
    embedder = HashingEmbedding()
    ingest_blocking(client, embedder, [docs], progress=False)
    index = RunbookIndex(embedder, client=client)

    embedder.calls = 0
    again = ingest_blocking(client, embedder, [docs], progress=False)
    assert (again.unchanged, again.added, again.changed, again.removed, again.chunks_written) == (2, 0, 0, 0, 0)
    assert embedder.calls == 0

    (docs / "disk.md").write_text(runbook("Disk full", {"Diagnosis": "Check inodes with df -i."}, ("HostDiskFull",)))
    (docs / "ups.md").unlink()
    (docs / "sub").mkdir()
    (docs / "sub" / "dns.md").write_text(runbook("DNS failure", {"Diagnosis": "dig @10.0.0.53 example.org"}))
    changed = ingest_blocking(client, embedder, [docs], progress=False)
    assert (changed.added, changed.changed, changed.removed, changed.unchanged) == (1, 1, 1, 0)
    assert changed.chunks_total == 2

    index.refresh()
    result = index._search_blocking("inodes df -i", 10, "hybrid")
    sources = {h.source for h in result.hits}
    assert sources == {"runbooks/disk.md", "runbooks/sub/dns.md"}
    assert all("Clean the journal" not in h.excerpt for h in result.hits)
    disk = [h for h in result.hits if h.source == "runbooks/disk.md"]
    assert [h.section for h in disk] == ["Diagnosis"]


def test_file_that_becomes_unreadable_leaves_the_index_with_a_message(docs: Path, tmp_path: Path) -> None:
    client = make_client(tmp_path / "index")
    ingest_blocking(client, HashingEmbedding(), [docs], progress=False)
    (docs / "ups.md").write_bytes("# UPS\n\nBatterie schw\xe4cher".encode("latin-1"))
    messages: list[str] = []
    summary = ingest_blocking(client, HashingEmbedding(), [docs], progress=False, on_message=messages.append)
    assert summary.removed == 1 and summary.chunks_total == 2
    assert any("ups.md: not UTF-8 text" in m for m in messages)


def test_ingest_never_writes_to_the_sources(docs: Path, tmp_path: Path) -> None:
    before = snapshot(docs)
    ingest_blocking(make_client(tmp_path / "index"), HashingEmbedding(), [docs], progress=False)
    assert snapshot(docs) == before


def test_ansible_files_in_extra_folders_are_indexed_per_task(docs: Path, tmp_path: Path) -> None:
    extra = tmp_path / "infra"
    (extra / "roles" / "nut" / "tasks").mkdir(parents=True)
    (extra / "roles" / "nut" / "tasks" / "main.yml").write_text(
        "- name: Install nut-client\n  ansible.builtin.apt: {name: nut-client}\n"
        "- name: Configure upsmon shutdown\n  ansible.builtin.template: {src: upsmon.conf.j2, dest: /etc/nut/}\n"
    )
    (extra / "compose.yml").write_text("services:\n  web:\n    image: nginx\n")
    client = make_client(tmp_path / "index")
    embedder = HashingEmbedding()
    summary = ingest_blocking(client, embedder, [docs, extra], progress=False)
    assert summary.added == 3 and summary.skipped == 2
    hits = RunbookIndex(embedder, client=client)._search_blocking("upsmon shutdown", 3, "keyword").hits
    assert (hits[0].source, hits[0].section, hits[0].kind) == (
        "infra/roles/nut/tasks/main.yml",
        "Configure upsmon shutdown",
        "ansible-task",
    )


def test_index_built_with_another_model_is_refused_until_rebuilt(docs: Path, tmp_path: Path) -> None:
    client = make_client(tmp_path / "index")
    ingest_blocking(client, HashingEmbedding(), [docs], progress=False)
    with pytest.raises(IndexModelMismatch) as info:
        ingest_blocking(client, OnnxMiniLmEmbedding(), [docs], progress=False)
    message = str(info.value)
    assert "'test:hashing-64'" in message and "onnx:all-MiniLM-L6-v2" in message
    assert "sre-triage ingest --rebuild" in message
    with pytest.raises(IndexModelMismatch):
        RunbookIndex(OnnxMiniLmEmbedding(), client=client)._search_blocking("disk", 3, "hybrid")


def test_cli_refuses_a_model_switch_then_rebuild_reembeds(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "index"
    ingest_blocking(make_client(index_dir), HashingEmbedding(), [docs], progress=False)
    monkeypatch.setenv("CHROMA_DIR", str(index_dir))
    (docs / "ups.md").unlink()  # keep the real-model part small

    assert main(["ingest", "--dir", str(docs)]) == EXIT_MODEL_MISMATCH
    err = capsys.readouterr().err
    assert "built with embedding model 'test:hashing-64'" in err and "sre-triage ingest --rebuild" in err

    assert main(["ingest", "--dir", str(docs), "--rebuild"]) == 0
    out = capsys.readouterr().out
    assert "1 added" in out and "2 in the index" in out

    assert main(["search", "clean the journal", "--json", "--limit", "1"]) == 0
    assert '"section": "Remediation"' in capsys.readouterr().out


def test_an_unattended_ingest_reembeds_after_a_model_change_instead_of_stopping(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index_dir = tmp_path / "index"
    ingest_blocking(make_client(index_dir), HashingEmbedding(), [docs], progress=False)
    monkeypatch.setenv("CHROMA_DIR", str(index_dir))
    (docs / "ups.md").unlink()  # keep the real-model part small

    assert main(["ingest", "--dir", str(docs), "--no-progress", "--rebuild-on-model-change"]) == 0
    captured = capsys.readouterr()
    assert "'test:hashing-64' → 'onnx:all-MiniLM-L6-v2" in captured.err and "re-embedding everything" in captured.err
    assert "1 added" in captured.out and "2 in the index" in captured.out

    # the same model again: an ordinary incremental run, nothing re-embedded
    assert main(["ingest", "--dir", str(docs), "--no-progress", "--rebuild-on-model-change"]) == 0
    assert "1 unchanged" in capsys.readouterr().out


async def test_search_on_a_missing_index_says_so(tmp_path: Path) -> None:
    index = RunbookIndex(HashingEmbedding(), chroma_dir=tmp_path / "nothing-yet")
    result = await index.search("disk full")
    assert result.hits == [] and result.reason == EMPTY_REASON
    assert "sre-triage ingest" in await index.runbook_search("disk full")
    assert await index.count() == 0
    assert await index.ping() is True  # reachable and empty: ready, searches explain the emptiness


async def test_index_emptied_by_deleting_every_file_says_so(docs: Path, tmp_path: Path) -> None:
    client = make_client(tmp_path / "index")
    ingest_blocking(client, HashingEmbedding(), [docs], progress=False)
    for path in docs.glob("*.md"):
        path.unlink()
    summary = ingest_blocking(client, HashingEmbedding(), [docs], progress=False)
    assert summary.removed == 2 and summary.chunks_total == 0
    result = await RunbookIndex(HashingEmbedding(), client=client).search("disk")
    assert result.reason == EMPTY_REASON


def test_cli_search_on_an_empty_index_explains_instead_of_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHROMA_DIR", str(tmp_path / "empty"))
    assert main(["search", "disk", "full"]) == 0
    assert "the runbook index is empty: run `sre-triage ingest`" in capsys.readouterr().err


async def test_open_index_follows_reingest_and_rebuild_done_elsewhere(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tools.runbooks.index.REVISION_CHECK_S", 0.0)
    index_dir = tmp_path / "index"
    ingest_blocking(make_client(index_dir), HashingEmbedding(), [docs], progress=False)
    index = RunbookIndex(HashingEmbedding(), chroma_dir=index_dir)
    assert (await index.search("upsc", mode="keyword")).hits[0].source == "runbooks/ups.md"

    writer = make_client(index_dir)
    (docs / "ups.md").unlink()
    ingest_blocking(writer, HashingEmbedding(), [docs], progress=False)
    assert (await index.search("upsc", mode="keyword")).reason == "no runbook section matches the query"

    (docs / "nut.md").write_text(runbook("NUT", {"Diagnosis": "upsc nut@localhost"}))
    ingest_blocking(writer, HashingEmbedding(), [docs], progress=False, rebuild=True)
    assert (await index.search("upsc", mode="keyword")).hits[0].source == "runbooks/nut.md"


def test_a_folder_missing_at_ingest_time_keeps_what_was_indexed_from_it(docs: Path, tmp_path: Path) -> None:
    extra = tmp_path / "nas-docs"
    extra.mkdir()
    (extra / "nfs.md").write_text(runbook("NFS share", {"Diagnosis": "showmount -e nas"}))
    client = make_client(tmp_path / "index")
    ingest_blocking(client, HashingEmbedding(), [docs, extra], progress=False)
    extra.rename(tmp_path / "unmounted")
    summary = ingest_blocking(client, HashingEmbedding(), [docs, extra], progress=False)
    assert (summary.removed, summary.unchanged, summary.chunks_total) == (0, 2, 5)


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server (the ``chroma`` command of the chromadb package) on a free loopback port."""
    binary = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(binary).exists():
        pytest.skip("the chroma server command is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, 30, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def cli(args: list[str], chroma_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDDINGS_", "CHROMA_"))}
    env["CHROMA_URL"] = chroma_url
    # a fresh process per command: chromadb's HTTP client keeps its sockets until interpreter exit
    return subprocess.run(
        [sys.executable, "-m", "triage.cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=90
    )


def test_chroma_url_shares_one_index_through_a_chroma_server(docs: Path, chroma_server: str) -> None:
    (docs / "ups.md").unlink()  # keep the real-model part small
    ingest = cli(["ingest", "--dir", str(docs), "--no-progress"], chroma_server)
    assert ingest.returncode == 0, ingest.stderr
    assert "1 added" in ingest.stdout and "2 in the index" in ingest.stdout
    search = cli(["search", "clean the journal", "--json", "--limit", "1"], chroma_server)
    assert search.returncode == 0, search.stderr
    hit = json.loads(search.stdout)["hits"][0]
    assert (hit["source"], hit["section"]) == ("runbooks/disk.md", "Remediation")


def test_unreachable_chroma_server_is_reported_not_raised(chroma_server: str) -> None:
    dead = chroma_server.rsplit(":", 1)[0] + f":{free_port()}"
    search = cli(["search", "disk"], dead)
    assert search.returncode == 1
    assert "sre-triage search: chroma: cannot reach the Chroma server" in search.stderr
    assert "Traceback" not in search.stderr
