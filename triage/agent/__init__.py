"""The /ask agent: a bounded, streaming tool loop over the read-only tools, with server-side sessions."""

from triage.agent.agent import AskAgent, AskLimits
from triage.agent.events import AskError, AskEvent, AskResult, AskSource, LlmFailed, LlmNotConfigured, SessionNotFound
from triage.agent.service import AskService
from triage.agent.sessions import SessionStore, owner_identity

__all__ = [
    "AskAgent",
    "AskError",
    "AskEvent",
    "AskLimits",
    "AskResult",
    "AskService",
    "AskSource",
    "LlmFailed",
    "LlmNotConfigured",
    "SessionNotFound",
    "SessionStore",
    "owner_identity",
]
