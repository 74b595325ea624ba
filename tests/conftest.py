"""Shared fixtures: a real Redis (REDIS_URL when set, else a throwaway redis-server), settings factories."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

import triage.settings
from tests.support.procs import RedisServer
from triage.settings import UNKNOWN_CHECK_PREFIXES, Settings, load_settings

# A developer's .env (written by scripts/run.sh) must not change what the tests see.
triage.settings.ENV_FILE = None

# Keep developer/CI environment variables from leaking into settings under test.
for _name in list(os.environ):
    if _name.upper().startswith(UNKNOWN_CHECK_PREFIXES):
        del os.environ[_name]
for _name in (
    "API_TOKEN",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "DATABASE_URL",
    "CHROMA_URL",
    "PUBLIC_URL",
    "LINK_SIGNING_KEY",
    "EXTRA_DOCS_DIRS",
    "RUNBOOKS_DIR",
    "CHROMA_DIR",
):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis for the whole session: REDIS_URL if set, else a throwaway server on a free port."""
    env_url = os.environ.get("REDIS_URL")
    if env_url:
        yield env_url
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client on the session Redis, flushed before each test."""
    client: Redis = Redis.from_url(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server the test may stop and restart."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_settings(tmp_path: Path, redis_url: str) -> Any:
    """Factory: settings with test defaults (temp data dir, the test Redis, a webhook token), overridable per group."""

    def factory(**groups: dict[str, Any]) -> Settings:
        base: dict[str, dict[str, Any]] = {
            "webhook": {"token": "test-webhook-token"},
            "api": {"api_token": "test-api-token", "public_url": "http://testserver"},
            "redis": {"redis_url": redis_url},
            "storage": {"database_url": f"sqlite:///{tmp_path}/reports.db"},
            "knowledge": {"chroma_dir": tmp_path / "chroma"},
        }
        for name, values in groups.items():
            base[name] = {**base.get(name, {}), **values}
        return load_settings(**base)

    return factory
