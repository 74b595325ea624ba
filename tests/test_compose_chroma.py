"""The compose layout's shared runbook index, run for real: compose's own `chroma run` command on a loopback port,
a long-lived reader (as the API and workers are) and ingest in other processes (as the ingest service is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.procs import free_port, wait_port
from tools.runbooks.index import EMPTY_REASON

ROOT = Path(__file__).resolve().parent.parent

SITE_NOTE = """# nas01 (TrueNAS)

## Stale NFS handle on docker01

Happens every time nas01 reboots while docker01 keeps running: `ls /mnt/media` says "Stale file handle".
Stop the media stack, `umount -f -l /mnt/media && mount /mnt/media`, start the stack again.
"""


def compose_chroma_command(path: Path, port: int) -> list[str]:
    """The chroma service's command from compose.yaml, on a private folder and a loopback port."""
    command: list[str] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))["services"]["chroma"][
        "command"
    ]
    values = {"--path": str(path), "--host": "127.0.0.1", "--port": str(port)}
    out = list(command)
    for flag, value in values.items():
        out[out.index(flag) + 1] = value
    binary = Path(sys.executable).parent / out[0]
    if not binary.exists():
        pytest.skip("the chroma server command is not installed")
    return [str(binary), *out[1:]]


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        compose_chroma_command(tmp_path / "chroma", port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port, 30, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def cli(args: list[str], chroma_url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDDINGS_", "CHROMA_", "EXTRA_DOCS"))}
    env.update(CHROMA_URL=chroma_url, **extra)
    return subprocess.run(
        [sys.executable, "-m", "triage.cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


# A long-lived reader like the API: one RunbookIndex on CHROMA_URL, searching once per line read from stdin. It runs
# in its own process because chromadb's HTTP client keeps a socket open until interpreter exit.
READER = """
import asyncio, json, sys
import tools.runbooks.index as index_module
from tools.runbooks.embeddings import OnnxMiniLmEmbedding
from tools.runbooks.index import RunbookIndex

index_module.REVISION_CHECK_S = 0.0  # re-check the collection's revision on every search
reader = RunbookIndex(OnnxMiniLmEmbedding(), chroma_url=sys.argv[1])
for line in sys.stdin:
    result = asyncio.run(reader.search(line.strip(), limit=3))
    print(json.dumps(result.as_dict()), flush=True)
"""


def test_a_running_reader_sees_what_another_process_ingested_into_the_chroma_server(
    chroma_url: str, tmp_path: Path
) -> None:
    bundled, site = tmp_path / "runbooks", tmp_path / "site"
    bundled.mkdir()
    site.mkdir()
    (bundled / "disk.md").write_text("# Disk full\n\n## Diagnosis\n\n`du -xh --max-depth=2 /` finds what grew.\n")
    (site / "nas01.md").write_text(SITE_NOTE)
    query = "stale nfs handle on docker01\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDDINGS_", "CHROMA_", "EXTRA_DOCS"))}
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, chroma_url], cwd=ROOT, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert reader.stdin is not None and reader.stdout is not None
    try:
        reader.stdin.write(query)
        reader.stdin.flush()
        before = json.loads(reader.stdout.readline())

        # the ingest service's command: the bundled runbooks and the mounted site docs, in another process
        ingest = cli(
            ["ingest", "--no-progress", "--rebuild-on-model-change"],
            chroma_url, RUNBOOKS_DIR=str(bundled), EXTRA_DOCS_DIRS=str(site),
        )  # fmt: skip
        reader.stdin.write(query)
        reader.stdin.flush()
        after = json.loads(reader.stdout.readline())
    finally:
        reader.stdin.close()
        reader.wait(30)
        reader.stdout.close()
    again = cli(
        ["ingest", "--no-progress", "--rebuild-on-model-change"],
        chroma_url, RUNBOOKS_DIR=str(bundled), EXTRA_DOCS_DIRS=str(site),
    )  # fmt: skip

    assert before["hits"] == [] and before["reason"] == EMPTY_REASON
    assert ingest.returncode == 0, ingest.stderr
    assert "2 added" in ingest.stdout
    assert after["hits"][0]["source"] == "site/nas01.md"
    # the next start skips what did not change
    assert again.returncode == 0, again.stderr
    assert "2 unchanged" in again.stdout and "0 chunks written" in again.stdout
