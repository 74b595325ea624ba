"""Names shared by the API and the worker: queue, job functions, Redis keys and their shapes.

Every Redis key (and stats hash field) is spelled here once; the functions build them and, where a reader must take
one apart, parse them. Keys already in Redis keep working: these shapes are part of the stored data.
"""

from __future__ import annotations

from datetime import UTC, datetime

QUEUE_NAME = "sre-triage:queue"
HEALTH_CHECK_KEY = "sre-triage:health-check"

JOB_TRIAGE = "triage_alert"
JOB_RESOLVE = "resolve_alert"

# job ids are the dedup keys: one triage per alert occurrence, one resolve per occurrence
TRIAGE_JOB_PREFIX = "triage:"
RESOLVE_JOB_PREFIX = "resolve:"

# worker job outcomes and durations, a hash the API's /metrics reads (workers expose no port of their own)
JOB_STATS_KEY = "sre-triage:stats:jobs"
# delivery attempts per channel and resulting state, for /metrics
DELIVERY_STATS_KEY = "sre-triage:stats:deliveries"

ASK_SESSION_PREFIX = "sre-triage:ask:session:"
LLM_BUDGET_PREFIX = "sre-triage:llm:tokens:"
STORM_PREFIX = "sre-triage:storm:"
NOTIFY_PREFIX = "sre-triage:notify:"
# separator of the fields inside the stats hashes
STATS_FIELD_SEP = "|"


def triage_job_id(occurrence_key: str) -> str:
    """The arq job id (and dedup key) of the triage of one alert occurrence."""
    return TRIAGE_JOB_PREFIX + occurrence_key


def resolve_job_id(occurrence_key: str) -> str:
    """The arq job id (and dedup key) of the resolve of one alert occurrence."""
    return RESOLVE_JOB_PREFIX + occurrence_key


def storm_lead_key(storm: str) -> str:
    """Who leads storm ``storm`` (the leader's report id), set for the storm window."""
    return f"{STORM_PREFIX}lead:{storm}"


def storm_result_key(storm: str) -> str:
    """The leader's finished report id, for the followers."""
    return f"{STORM_PREFIX}result:{storm}"


def storm_members_key(storm: str) -> str:
    """The set of report ids that joined the storm."""
    return f"{STORM_PREFIX}members:{storm}"


def storm_lock_key(storm: str) -> str:
    """The lock around updates of the storm's member list."""
    return f"{STORM_PREFIX}lock:{storm}"


def notify_slot_key(channel: str, event: str) -> str:
    """The rate-limit slot of a chat channel and event kind: the report id that may send in this window."""
    return f"{NOTIFY_PREFIX}slot:{channel}:{event}"


def notify_held_key(channel: str, event: str) -> str:
    """How many messages of a channel and event kind were held back by the rate limit."""
    return f"{NOTIFY_PREFIX}held:{channel}:{event}"


def llm_budget_key(now: datetime) -> str:
    """The LLM token count of the UTC hour ``now`` falls in."""
    return LLM_BUDGET_PREFIX + now.astimezone(UTC).strftime("%Y%m%d%H")


def ask_session_key(session_id: str, prefix: str = ASK_SESSION_PREFIX) -> str:
    """One /ask session's stored turns."""
    return prefix + session_id


def job_stats_field(function: str, kind: str, label: str = "") -> str:
    """A field of :data:`JOB_STATS_KEY`: ``<function>|outcome|<outcome>``, ``<function>|le|<bound>`` or
    ``<function>|sum`` (no label)."""
    parts = (function, kind, label) if label else (function, kind)
    return STATS_FIELD_SEP.join(parts)


def parse_job_stats_field(field: str) -> tuple[str, str, str]:
    """``(function, kind, label)`` of a :data:`JOB_STATS_KEY` field (label empty for ``sum``)."""
    function, _, rest = field.partition(STATS_FIELD_SEP)
    kind, _, label = rest.partition(STATS_FIELD_SEP)
    return function, kind, label


def delivery_stats_field(channel: str, state: str) -> str:
    """A field of :data:`DELIVERY_STATS_KEY`: ``<channel>|<state>``."""
    return f"{channel}{STATS_FIELD_SEP}{state}"


def parse_delivery_stats_field(field: str) -> tuple[str, str]:
    """``(channel, state)`` of a :data:`DELIVERY_STATS_KEY` field."""
    channel, _, state = field.partition(STATS_FIELD_SEP)
    return channel, state
