"""Conversation history of /ask, kept in Redis with a TTL.

Session ids come only from the server (``secrets.token_urlsafe(32)``: 256 random bits). Each session is bound to the
identity of the credential that created it; reading or writing it with another identity, an unknown id, or an expired
one all answer the same :class:`SessionNotFound`, so the API is no oracle for which ids exist. A write never
recreates a session that expired in the meantime.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from reports.models import utcnow
from triage.agent.events import AskError, SessionNotFound
from triage.constants import ASK_SESSION_PREFIX, ask_session_key

SESSION_ID_BYTES = 32
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_STORED_TURNS = 50

# Compare-owner-and-set in one step: a write from another identity or to an expired key changes nothing.
_UPDATE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local ok, doc = pcall(cjson.decode, current)
if not ok or doc['owner'] ~= ARGV[2] then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return 1
"""


class SessionStoreError(AskError):
    """Redis failed while reading or writing a session."""

    code = "session_store_failed"
    status_code = 503


class Turn(BaseModel):
    question: str
    answer: str
    sources: list[str] = Field(default_factory=list)
    at: datetime = Field(default_factory=utcnow)


class Session(BaseModel):
    id: str
    owner: str
    created_at: datetime = Field(default_factory=utcnow)
    turns: list[Turn] = Field(default_factory=list)


def owner_identity(credential: str) -> str:
    """A stable, non-reversible identity for a bearer credential (the credential itself is never stored)."""
    return hmac.new(b"sre-triage ask session owner", credential.encode(), hashlib.sha256).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(SESSION_ID_BYTES)


class SessionStore:
    """Sessions in Redis under ``ASK_SESSION_PREFIX``; every write renews the TTL."""

    def __init__(self, redis: Redis, *, ttl_s: int, prefix: str = ASK_SESSION_PREFIX) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.prefix = prefix

    def _key(self, session_id: str) -> str:
        return ask_session_key(session_id, self.prefix)

    async def create(self, owner: str) -> Session:
        """A new, empty session owned by ``owner``."""
        session = Session(id=new_session_id(), owner=owner)
        try:
            created = await self.redis.set(self._key(session.id), session.model_dump_json(), ex=self.ttl_s, nx=True)
        except RedisError as exc:
            raise SessionStoreError("the session store (Redis) is unavailable") from exc
        if not created:  # 256 random bits do not collide; a clash means the generator is broken
            raise SessionStoreError("could not allocate a session id")
        return session

    async def get(self, session_id: str, owner: str) -> Session:
        """The session, if it exists, has not expired and belongs to ``owner``; else SessionNotFound."""
        if not _SESSION_ID.fullmatch(session_id):
            raise SessionNotFound("unknown or expired session")
        try:
            raw: Any = await self.redis.get(self._key(session_id))
        except RedisError as exc:
            raise SessionStoreError("the session store (Redis) is unavailable") from exc
        if raw is None:
            raise SessionNotFound("unknown or expired session")
        try:
            session = Session.model_validate_json(raw)
        except ValidationError as exc:
            raise SessionNotFound("unknown or expired session") from exc
        if not hmac.compare_digest(session.owner, owner):
            raise SessionNotFound("unknown or expired session")
        return session

    async def append(self, session: Session, turn: Turn) -> Session:
        """Add a turn (keeping the newest ``MAX_STORED_TURNS``) and renew the TTL; SessionNotFound if it is gone."""
        updated = session.model_copy(update={"turns": [*session.turns, turn][-MAX_STORED_TURNS:]})
        try:
            result = await self.redis.eval(  # type: ignore[misc]
                _UPDATE, 1, self._key(session.id), updated.model_dump_json(), session.owner, str(self.ttl_s)
            )
        except RedisError as exc:
            raise SessionStoreError("the session store (Redis) is unavailable") from exc
        if int(result) != 1:
            raise SessionNotFound("unknown or expired session")
        return updated
