"""Names shared by the API and the worker: queue, job functions, Redis keys."""

QUEUE_NAME = "sre-triage:queue"
HEALTH_CHECK_KEY = "sre-triage:health-check"

JOB_TRIAGE = "triage_alert"
JOB_RESOLVE = "resolve_alert"

# job ids are the dedup keys: one triage per alert occurrence, one resolve per occurrence
TRIAGE_JOB_PREFIX = "triage:"
RESOLVE_JOB_PREFIX = "resolve:"

# worker job outcomes and durations, a hash the API's /metrics reads (workers expose no port of their own)
JOB_STATS_KEY = "sre-triage:stats:jobs"
# final delivery state of each triage/resolve job attempt that finished, a hash the API's /metrics reads
DELIVERY_STATS_KEY = "sre-triage:stats:deliveries"

ASK_SESSION_PREFIX = "sre-triage:ask:session:"
LLM_BUDGET_PREFIX = "sre-triage:llm:tokens:"
STORM_PREFIX = "sre-triage:storm:"
