"""/readyz and /health cover the runbook index: missing is degraded but ready, unreadable is not ready.

The full API runs in-process with its lifespan; the index is a real embedded Chroma in the test's temp dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.intake import api
from tools.runbooks.collection import COLLECTION_NAME, make_client, open_collection
from tools.runbooks.embeddings import make_embedder
from triage.constants import HEALTH_CHECK_KEY
from triage.runbook_index import LOCAL_MODEL
from webhook.app import all_routers
from webhook.health import Degraded, NotReady, runbook_readiness


async def probe(settings: Any, redis: Redis) -> tuple[Any, Any]:
    await redis.set(HEALTH_CHECK_KEY, "worker alive", ex=60)
    async with api(settings, routers=all_routers) as (_, client):
        return await client.get("/readyz"), await client.get("/health")


async def test_an_index_that_was_never_built_is_degraded_but_ready(
    make_settings: Any, redis: Redis, tmp_path: Path
) -> None:
    ready, health = await probe(make_settings(knowledge={"chroma_dir": tmp_path / "never-built"}), redis)

    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["checks"]["runbooks"]["status"] == "degraded"
    runbooks = health.json()["dependencies"]["runbooks"]
    assert runbooks["status"] == "degraded" and "sre-triage ingest" in runbooks["detail"]
    assert health.status_code == 200 and health.json()["status"] == "degraded"


async def test_a_built_index_is_ready_and_healthy(make_settings: Any, redis: Redis, tmp_path: Path) -> None:
    chroma_dir = tmp_path / "chroma-built"
    embedder = make_embedder(None, LOCAL_MODEL, None)
    collection = open_collection(make_client(chroma_dir), embedder, create=True)
    assert collection is not None
    # vectors given directly: readiness only opens and counts, so the model need not run here
    collection.add(
        ids=["disk-full#0"],
        documents=["Free space on the root filesystem: journalctl --vacuum-size=200M"],
        embeddings=[[0.1] * 384],
        metadatas=[{"source": "disk-full.md", "title": "Disk full", "section": "Free space"}],
    )

    ready, health = await probe(make_settings(knowledge={"chroma_dir": chroma_dir}), redis)

    assert ready.status_code == 200
    assert ready.json()["checks"]["runbooks"]["status"] == "healthy"
    assert health.json()["dependencies"]["runbooks"]["status"] == "healthy"


async def test_an_index_built_with_another_embedding_model_fails_readiness_with_the_fix(
    make_settings: Any, redis: Redis, tmp_path: Path
) -> None:
    chroma_dir = tmp_path / "chroma-other-model"
    make_client(chroma_dir).create_collection(COLLECTION_NAME, metadata={"embedding_model": "openai:text-embed-9"})

    ready, health = await probe(make_settings(knowledge={"chroma_dir": chroma_dir}), redis)

    assert ready.status_code == 503
    error = ready.json()["error"]
    assert error["code"] == "not_ready"
    assert "runbooks" in error["message"] and "'openai:text-embed-9'" in error["message"]
    assert "sre-triage ingest --rebuild" in error["message"]
    assert ready.json()["checks"]["runbooks"]["status"] == "unhealthy"
    assert ready.json()["checks"]["redis"]["status"] == "healthy"
    assert health.json()["dependencies"]["runbooks"]["status"] == "unhealthy"


async def test_a_corrupt_index_fails_readiness_and_says_how_to_rebuild(
    make_settings: Any, redis: Redis, tmp_path: Path
) -> None:
    chroma_dir = tmp_path / "chroma-corrupt"
    chroma_dir.mkdir()
    (chroma_dir / "chroma.sqlite3").write_bytes(b"this is not a sqlite database" * 200)

    ready, _ = await probe(make_settings(knowledge={"chroma_dir": chroma_dir}), redis)

    assert ready.status_code == 503
    message = ready.json()["error"]["message"]
    assert "the runbook index cannot be opened" in message and "ingest --rebuild" in message


class _Raising:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def count(self) -> int:
        raise self.exc


async def test_an_unexpected_failure_names_only_its_type_never_its_text() -> None:
    leaky = _Raising(RuntimeError("cannot open http://admin:hunter2@chroma.internal"))
    with pytest.raises(NotReady) as refused:
        await runbook_readiness(leaky)
    assert "RuntimeError" in str(refused.value) and "hunter2" not in str(refused.value)


async def test_an_empty_index_is_degraded_not_failed() -> None:
    class Empty:
        async def count(self) -> int:
            return 0

    outcome = await runbook_readiness(Empty())
    assert isinstance(outcome, Degraded) and "sre-triage ingest" in outcome.reason
