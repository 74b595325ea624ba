"""/ask conversation sessions in a real Redis: server-made ids, isolation between credentials, expiry."""

from __future__ import annotations

import asyncio
import re

import pytest
from redis.asyncio import Redis

from triage.agent.events import SessionNotFound
from triage.agent.sessions import SessionStore, Turn, owner_identity
from triage.constants import ASK_SESSION_PREFIX

ALICE = owner_identity("token-of-alice-0001")
BOB = owner_identity("token-of-bob-0002")


@pytest.fixture
def store(redis: Redis) -> SessionStore:
    return SessionStore(redis, ttl_s=60)


async def test_session_ids_are_long_random_and_url_safe(store: SessionStore) -> None:
    ids = {(await store.create(ALICE)).id for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", i) for i in ids)


async def test_turns_are_kept_in_order_and_read_back_by_their_owner(store: SessionStore) -> None:
    session = await store.create(ALICE)
    session = await store.append(session, Turn(question="q1", answer="a1", sources=["loki_query"]))
    await store.append(session, Turn(question="q2", answer="a2"))
    loaded = await store.get(session.id, ALICE)
    assert [(t.question, t.answer) for t in loaded.turns] == [("q1", "a1"), ("q2", "a2")]
    assert loaded.turns[0].sources == ["loki_query"]


async def test_another_credential_cannot_read_a_session(store: SessionStore) -> None:
    session = await store.create(ALICE)
    with pytest.raises(SessionNotFound):
        await store.get(session.id, BOB)


async def test_another_credential_cannot_overwrite_a_session(store: SessionStore, redis: Redis) -> None:
    session = await store.create(ALICE)
    await store.append(session, Turn(question="mine", answer="private"))
    forged = session.model_copy(update={"owner": BOB})
    with pytest.raises(SessionNotFound):
        await store.append(forged, Turn(question="injected", answer="overwritten"))
    loaded = await store.get(session.id, ALICE)
    assert [t.question for t in loaded.turns] == ["mine"]


async def test_unknown_and_malformed_ids_are_not_found_and_never_created(store: SessionStore, redis: Redis) -> None:
    for session_id in ["A" * 43, "short", "../../etc/passwd", "x" * 200, ""]:
        with pytest.raises(SessionNotFound):
            await store.get(session_id, ALICE)
    assert await redis.keys(ASK_SESSION_PREFIX + "*") == []


async def test_the_owner_credential_itself_is_not_stored(store: SessionStore, redis: Redis) -> None:
    session = await store.create(owner_identity("token-of-alice-0001"))
    raw = await redis.get(ASK_SESSION_PREFIX + session.id)
    assert raw is not None and b"token-of-alice-0001" not in raw


async def test_a_session_expires_after_its_ttl_and_a_late_write_does_not_revive_it(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=1)
    session = await store.create(ALICE)
    assert 0 < await redis.ttl(ASK_SESSION_PREFIX + session.id) <= 1
    await asyncio.sleep(1.3)
    with pytest.raises(SessionNotFound):
        await store.get(session.id, ALICE)
    with pytest.raises(SessionNotFound):
        await store.append(session, Turn(question="late", answer="late"))
    assert await redis.exists(ASK_SESSION_PREFIX + session.id) == 0


async def test_every_turn_renews_the_ttl(redis: Redis) -> None:
    store = SessionStore(redis, ttl_s=2)
    session = await store.create(ALICE)
    await asyncio.sleep(1.2)
    session = await store.append(session, Turn(question="still here", answer="yes"))
    await asyncio.sleep(1.2)
    assert (await store.get(session.id, ALICE)).turns[-1].question == "still here"
