"""Settings: one typed object, nested per concern, read from the environment (and `.env`) once at start-up.

Each group reads its own variables (``WEBHOOK_*``, ``PROMETHEUS_*`` …). :func:`load_settings` turns validation
errors into a :class:`StartupError` whose message says, per variable, what is wrong and how to fix it. A name with
one of our prefixes that is not a setting is refused alike in the environment and in ``.env`` (a typo there would
otherwise be ignored silently).
Nothing else in the code reads the environment.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_DIR = Path(__file__).resolve().parent.parent


class StartupError(Exception):
    """The configuration cannot work; the message says what to fix."""


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )


class WebhookSettings(BaseSettings):
    model_config = _config("WEBHOOK_")

    token: SecretStr | None = Field(None, description="Bearer token the alert sender must present.")
    basic_user: str | None = Field(None, description="Basic-auth user name the alert sender must present.")
    basic_password: SecretStr | None = Field(None, description="Basic-auth password (with WEBHOOK_BASIC_USER).")
    hmac_secret: SecretStr | None = Field(None, description="Secret of Grafana's HMAC signature.")
    hmac_header: str | None = Field(
        None,
        description="Header carrying the HMAC signature; unset accepts Grafana's X-Grafana-Alert-Signature and "
        "X-Grafana-Alerting-Signature.",
    )
    hmac_timestamp_header: str | None = Field(
        None, description="Header carrying the signing timestamp when Grafana is set to send one."
    )
    hmac_replay_window_s: int = Field(300, ge=1, description="Maximum age of a signed timestamp, in seconds.")
    allow_unauthenticated: bool = Field(False, description="Accept alerts without any authentication.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted notification body, in bytes.")

    @model_validator(mode="after")
    def _basic_pair(self) -> Self:
        if bool(self.basic_user) != bool(self.basic_password):
            raise ValueError("set both WEBHOOK_BASIC_USER and WEBHOOK_BASIC_PASSWORD, or neither")
        if self.basic_user and ":" in self.basic_user:
            # Basic auth sends "user:password": a colon in the user name makes every login fail
            raise ValueError("WEBHOOK_BASIC_USER must not contain ':' (Basic auth separates user and password with it)")
        return self

    @property
    def auth_configured(self) -> bool:
        return bool(self.token or self.basic_user or self.hmac_secret)


class ApiSettings(BaseSettings):
    model_config = _config("")

    api_token: SecretStr | None = Field(None, description="Bearer token for /reports, /ask and the JSON API.")
    public_url: str = Field("http://localhost:8080", description="Base URL users reach the service at (links).")
    link_ttl_s: int = Field(30 * 86400, ge=60, description="Lifetime of signed report links, in seconds.")
    link_signing_key: SecretStr | None = Field(
        None, description="Key that signs report links (defaults to one derived from API_TOKEN)."
    )
    session_ttl_s: int = Field(
        7 * 86400, ge=300, description="Lifetime of a browser login (the cookie /login sets), in seconds."
    )
    api_host: str = Field(
        "127.0.0.1", description="Address the API listens on (the container image sets 0.0.0.0 for its network)."
    )
    api_port: int = Field(8080, ge=1, le=65535, description="Port the API listens on.")
    api_request_read_timeout_s: float = Field(
        15.0,
        gt=0,
        le=600,
        description="A connection must send a whole request (headers and body) within this many seconds, else it "
        "is closed.",
    )
    api_max_connections: int = Field(
        500, ge=1, description="Open connections the API keeps at once; connections beyond it are closed at once."
    )
    api_health_cache_s: float = Field(
        5.0, ge=0, le=300, description="How long /health reuses its answer (it probes every data source)."
    )
    api_docs: bool = Field(
        False, description="Serve the interactive API docs at /docs (the page loads its scripts from a CDN)."
    )
    api_intake_only: bool = Field(
        False, description="Serve only the webhooks, health and metrics (a dedicated intake replica)."
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return upper

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class RedisSettings(BaseSettings):
    model_config = _config("")

    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis holding the job queue and sessions.")
    dedup_window_s: int = Field(
        6 * 3600,
        ge=60,
        description="How long a finished job blocks a re-sent alert from a second triage (s).",
    )
    job_timeout_s: int = Field(300, ge=10, description="Wall-clock limit of one triage job, in seconds.")
    job_max_tries: int = Field(5, ge=1, description="Attempts per job before it is given up.")
    worker_max_jobs: int = Field(8, ge=1, description="Jobs one worker process runs at once.")
    job_retry_backoff_s: float = Field(
        5.0, gt=0, le=600, description="First retry delay after a transient failure; doubles per try (s)."
    )
    worker_shutdown_grace_s: int = Field(
        30, ge=0, description="On SIGTERM, how long a worker lets running jobs finish before cancelling them (s)."
    )

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value


class SourceSettings(BaseSettings):
    """Shared shape of one data source. ``url`` unset means the source is not configured."""

    url: str | None = None
    timeout_s: float = Field(10.0, gt=0)
    verify_tls: bool = True
    ca_file: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, value: str | None) -> str | None:
        if value and not Path(value).is_file():
            raise ValueError(f"CA file {value} does not exist")
        return value or None

    @property
    def configured(self) -> bool:
        return self.url is not None


class PrometheusSettings(SourceSettings):
    model_config = _config("PROMETHEUS_")
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None


class LokiSettings(SourceSettings):
    model_config = _config("LOKI_")
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    tenant: str | None = None
    patterns: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Loki's patterns API (pattern ingester) for log change detection: auto = use it when it answers "
        "(a Loki that does not is not asked again for 10 min), on = ask every time, off = always read lines.",
    )


class GrafanaSettings(SourceSettings):
    model_config = _config("GRAFANA_")
    token: SecretStr | None = None
    org_id: int = 1
    org_tokens: SecretStr | None = Field(
        None,
        description="Service-account tokens of further organisations, ORGID=TOKEN,… (tokens belong to one "
        "organisation; an alert's orgId picks the token its annotation is written with).",
    )
    prometheus_uid: str | None = Field(
        None, description="UID of the Prometheus data source in Grafana, for report pages' Explore links."
    )
    loki_uid: str | None = Field(None, description="UID of the Loki data source in Grafana, for Explore links.")

    @field_validator("org_tokens")
    @classmethod
    def _org_tokens(cls, value: SecretStr | None) -> SecretStr | None:
        for item in (value.get_secret_value() if value else "").split(","):
            org, sep, token = item.strip().partition("=")
            if item.strip() and not (sep and org.strip().isdigit() and token.strip()):
                # never echo the value: it holds tokens
                raise ValueError("use ORGID=TOKEN pairs separated by commas, e.g. 2=glsa_…,3=glsa_…")
        return value

    @property
    def org_token_map(self) -> dict[int, str]:
        """Organisation id → service-account token, from GRAFANA_ORG_TOKENS."""
        pairs = (
            item.partition("=") for item in (self.org_tokens.get_secret_value() if self.org_tokens else "").split(",")
        )
        return {int(org.strip()): token.strip() for org, _, token in pairs if org.strip()}


class ProxmoxSettings(SourceSettings):
    model_config = _config("PROXMOX_")
    token_id: str | None = None
    token_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _token(self) -> Self:
        if self.url and not (self.token_id and self.token_secret):
            raise ValueError("set PROXMOX_TOKEN_ID (user@realm!tokenid) and PROXMOX_TOKEN_SECRET")
        if self.token_id and ("@" not in self.token_id or "!" not in self.token_id):
            raise ValueError("PROXMOX_TOKEN_ID must look like user@realm!tokenid")
        return self


class PbsSettings(SourceSettings):
    model_config = _config("PBS_")
    token_id: str | None = None
    token_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _token(self) -> Self:
        if self.url and not (self.token_id and self.token_secret):
            raise ValueError("set PBS_TOKEN_ID (user@realm!tokenid) and PBS_TOKEN_SECRET")
        if self.token_id and ("@" not in self.token_id or "!" not in self.token_id):
            raise ValueError("PBS_TOKEN_ID must look like user@realm!tokenid")
        return self


class LlmSettings(BaseSettings):
    model_config = _config("")

    openai_base_url: str | None = Field(None, description="OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp …).")
    openai_api_key: SecretStr | None = Field(None, description="API key for the LLM endpoint.")
    llm_model: str = Field("gpt-4o-mini", description="Model name sent to the LLM endpoint.")
    llm_timeout_s: float = Field(60.0, gt=0, description="Timeout of one LLM call, in seconds.")
    llm_max_output_tokens: int = Field(1200, ge=64, description="Completion token limit per LLM call.")
    llm_hourly_token_budget: int = Field(
        200_000,
        ge=0,
        description="Tokens triage and /ask may spend per hour together; over it reports use the summary and "
        "/ask refuses questions (429) until the hour ends.",
    )
    llm_structured_output: Literal["json_schema", "function_calling", "json_mode"] = Field(
        "json_schema",
        description="How the triage call asks for structured output; answers without it are parsed as JSON text.",
    )
    llm_prompt_evidence_tokens: int = Field(
        3500, ge=200, description="Tokens of ranked evidence one triage prompt may carry."
    )
    llm_max_hypotheses: int = Field(
        3,
        ge=1,
        le=5,
        description="Hypotheses the triage answer may hold; 2 makes a small model on a CPU quicker but less often right.",
    )

    @property
    def configured(self) -> bool:
        return bool(self.openai_base_url or self.openai_api_key)


class KnowledgeSettings(BaseSettings):
    model_config = _config("")

    runbooks_dir: Path = Field(REPO_DIR / "runbooks", description="Folder of bundled Markdown runbooks.")
    extra_docs_dirs: str = Field("", description="Colon-separated folders of more Markdown/Ansible docs to index.")
    chroma_dir: Path = Field(Path("data/chroma"), description="Folder of the embedded Chroma index.")
    chroma_url: str | None = Field(None, description="Chroma server URL (several hosts) instead of CHROMA_DIR.")
    runbooks_base_url: str | None = Field(
        None,
        description="Where users browse the indexed folders (e.g. a Git web UI); runbook matches link to "
        "BASE/<folder>/<path>#<section>. Unset: matches are shown without links.",
    )
    embeddings_base_url: str | None = Field(None, description="OpenAI-compatible embeddings endpoint (optional).")
    embeddings_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Embedding model (the local ONNX model unless EMBEDDINGS_BASE_URL is set).",
    )
    embeddings_api_key: SecretStr | None = Field(None, description="API key for EMBEDDINGS_BASE_URL.")
    topology_file: Path | None = Field(
        None,
        description="YAML file declaring which hosts depend on which and the other names a host carries in labels "
        "(see docs/architecture.md#topology); checked at start-up.",
    )

    @field_validator("topology_file")
    @classmethod
    def _topology(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        from triage.topology import Topology

        Topology.load(value)  # a TopologyError (a ValueError) names the file and the problem
        return value

    @property
    def extra_dirs(self) -> list[Path]:
        return [Path(p) for p in self.extra_docs_dirs.split(":") if p.strip()]


class StorageSettings(BaseSettings):
    model_config = _config("")

    database_url: str = Field(
        "sqlite:///data/sre-triage.db", description="Report store: sqlite:///PATH or postgresql://…"
    )
    report_retention_days: int = Field(90, ge=0, description="Delete reports older than this (0 keeps all).")
    report_retention_count: int = Field(0, ge=0, description="Keep at most this many reports (0: no limit).")

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("use sqlite:///PATH or postgresql://USER@HOST/DB")
        return value


class AskSettings(BaseSettings):
    model_config = _config("ASK_")

    max_tool_calls: int = Field(8, ge=0, le=64, description="Tool calls one /ask question may make in total.")
    deadline_s: float = Field(60.0, gt=0, description="Wall-clock limit of one /ask question, in seconds.")
    final_answer_s: float = Field(
        15.0, gt=0, description="Part of ASK_DEADLINE_S kept for the final answer when a bound cuts the tool loop (s)."
    )
    tool_output_chars: int = Field(4000, ge=200, description="Characters of one tool result shown to the model.")
    total_tool_output_chars: int = Field(
        24000, ge=200, description="Characters of all tool results of one question shown to the model."
    )
    session_ttl_s: int = Field(86400, ge=60, description="Lifetime of an /ask conversation after its last turn (s).")
    history_turns: int = Field(6, ge=0, le=50, description="Earlier turns of a conversation sent to the model.")
    max_question_chars: int = Field(4000, ge=10, description="Longest accepted /ask question, in characters.")
    max_concurrent: int = Field(
        4, ge=1, description="Questions one API process answers at once; more are refused with 429."
    )


class TriageSettings(BaseSettings):
    model_config = _config("TRIAGE_")

    log_lines_max: int = Field(
        2000, ge=50, le=5000, description="Log lines one query of the log-pattern check reads per place and window."
    )
    log_patterns_max: int = Field(
        8, ge=1, le=50, description="New or surged log templates the log-pattern check reports per alert."
    )
    series_max: int = Field(
        600, ge=10, le=10000, description="Series the metric-discovery check considers per place (more are skipped)."
    )
    metric_names_max: int = Field(
        120, ge=1, le=2000, description="Metric names the metric-discovery check queries per place."
    )
    slow_burn_min: int = Field(
        60,
        ge=0,
        le=720,
        description="How long before an alert's onset evidence still counts fully, besides the rule's `for` (min).",
    )

    window_before_min: int = Field(60, ge=5, description="Minutes before an alert's start that checks look at.")
    window_after_min: int = Field(30, ge=0, description="Minutes after an alert's start that checks look at.")
    window_max_min: int = Field(360, ge=10, description="Longest window checks look at, in minutes.")
    check_timeout_s: float = Field(20.0, gt=0, description="Deadline of one evidence check, in seconds.")
    deadline_s: float = Field(45.0, gt=0, description="Deadline of all evidence checks of one alert, in seconds.")
    history_days: int = Field(30, ge=1, description="Days of earlier reports the history check counts.")
    storm_window_s: int = Field(
        60, ge=0, description="Alerts of one group or host starting this close together are triaged as one (0: off)."
    )
    storm_wait_s: float = Field(
        90.0, gt=0, description="How long a storm member waits for the group's triage before doing its own (s)."
    )
    followup_tool_calls: int = Field(
        3, ge=0, le=16, description="Read-only tool calls the triage LLM may ask for before its final answer (0: off)."
    )


class NotifySettings(BaseSettings):
    model_config = _config("NOTIFY_")

    urls: SecretStr | None = Field(
        None,
        description="Comma-separated Apprise URLs that get a short message per report (ntfy://…, "
        "json://host/path, mailto://…, discord://… ); secrets in them are never shown.",
    )
    severities: str = Field(
        "", description="Comma-separated severities that notify (none: alerts without one); empty: every alert."
    )
    rate_limit_s: int = Field(
        300, ge=0, description="Per channel, at most one message per this many seconds; the rest are counted (0: off)."
    )
    on_resolve: bool = Field(True, description="Also notify when an alert resolves.")
    timeout_s: float = Field(20.0, gt=0, description="Deadline of one notification send, in seconds.")

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from triage.notify.apprise_sender import NotifyUrlError, validate_urls

        try:
            validate_urls(value.get_secret_value())
        except NotifyUrlError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def url_list(self) -> list[str]:
        from triage.notify.apprise_sender import split_urls

        return split_urls(self.urls.get_secret_value()) if self.urls else []

    @property
    def severity_set(self) -> frozenset[str]:
        return frozenset(s.strip().lower() for s in self.severities.split(",") if s.strip())


class DigestSettings(BaseSettings):
    model_config = _config("DIGEST_")

    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun", "off"] = Field(
        "mon", description="Day the weekly alert digest is sent through NOTIFY_URLS (off: never)."
    )
    hour: int = Field(8, ge=0, le=23, description="Hour (UTC) the weekly digest is sent.")
    period_days: int = Field(7, ge=1, le=366, description="Days of alerts the scheduled digest covers.")


class Settings(BaseModel):
    """All settings, grouped. Build with :func:`load_settings`."""

    webhook: WebhookSettings
    api: ApiSettings
    redis: RedisSettings
    prometheus: PrometheusSettings
    loki: LokiSettings
    grafana: GrafanaSettings
    proxmox: ProxmoxSettings
    pbs: PbsSettings
    llm: LlmSettings
    knowledge: KnowledgeSettings
    storage: StorageSettings
    ask: AskSettings
    triage: TriageSettings
    notify: NotifySettings
    digest: DigestSettings


GROUPS: dict[str, type[BaseSettings]] = {
    "webhook": WebhookSettings,
    "api": ApiSettings,
    "redis": RedisSettings,
    "prometheus": PrometheusSettings,
    "loki": LokiSettings,
    "grafana": GrafanaSettings,
    "proxmox": ProxmoxSettings,
    "pbs": PbsSettings,
    "llm": LlmSettings,
    "knowledge": KnowledgeSettings,
    "storage": StorageSettings,
    "ask": AskSettings,
    "triage": TriageSettings,
    "notify": NotifySettings,
    "digest": DigestSettings,
}


def env_names(group: type[BaseSettings]) -> list[str]:
    """The environment variable names a settings group reads."""
    prefix = str(group.model_config.get("env_prefix", ""))
    return [(prefix + name).upper() for name in group.model_fields]


def all_env_names() -> list[str]:
    return [name for group in GROUPS.values() for name in env_names(group)]


def _explain(group: type[BaseSettings], exc: ValidationError) -> list[str]:
    prefix = str(group.model_config.get("env_prefix", ""))
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        var = (prefix + loc[0]).upper() if loc else prefix.rstrip("_") + " settings"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{var}: {msg}")
    return lines


# The dotenv file every group reads besides the environment; None reads the environment only (tests).
ENV_FILE: str | None = ".env"

UNKNOWN_CHECK_PREFIXES = (
    "WEBHOOK_",
    "PROMETHEUS_",
    "LOKI_",
    "GRAFANA_",
    "PROXMOX_",
    "PBS_",
    "LLM_",
    "OPENAI_",
    "EMBEDDINGS_",
    "ASK_",
    "TRIAGE_",
    "NOTIFY_",
    "DIGEST_",
)


def unknown_env_names(environ: Mapping[str, str | None]) -> list[str]:
    """Variables that look like ours (known prefix) but are not a setting: most likely a typo."""
    known = set(all_env_names())
    return sorted(k for k in environ if k.upper().startswith(UNKNOWN_CHECK_PREFIXES) and k.upper() not in known)


def _unknown_problem(name: str, where: str) -> str:
    close = difflib.get_close_matches(name.upper(), all_env_names(), n=1, cutoff=0.75)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{name}{where}: not a setting of sre-triage{hint} (see the configuration table in the README)"


def unknown_setting_problems(environ: Mapping[str, str | None], dotenv: Mapping[str, str | None]) -> list[str]:
    """One sentence per unknown name, from the environment and from the dotenv file alike."""
    problems = [_unknown_problem(name, "") for name in unknown_env_names(environ)]
    problems += [_unknown_problem(name, f" (in {ENV_FILE})") for name in unknown_env_names(dotenv)]
    return problems


def _dotenv_values() -> dict[str, str | None]:
    # the same file, parsed by the same library, that pydantic-settings reads the values from
    if ENV_FILE is None or not Path(ENV_FILE).is_file():
        return {}
    return dict(dotenv_values(ENV_FILE, encoding="utf-8"))


def load_settings(require_webhook_auth: bool = False, **overrides: Any) -> Settings:
    """Read every group from the environment; raise StartupError listing every problem with a fix.

    ``overrides`` maps a group name to keyword arguments for that group (tests and the CLI use it).
    """
    built: dict[str, BaseSettings] = {}
    problems = unknown_setting_problems(os.environ, _dotenv_values())
    for name, group in GROUPS.items():
        try:
            built[name] = group(_env_file=ENV_FILE, **overrides.get(name, {}))
        except ValidationError as exc:
            problems.extend(_explain(group, exc))
    if problems:
        raise StartupError("invalid configuration:\n  " + "\n  ".join(problems))
    settings = Settings.model_validate(built)
    if require_webhook_auth and not (settings.webhook.auth_configured or settings.webhook.allow_unauthenticated):
        raise StartupError(
            "no webhook authentication is configured: set WEBHOOK_TOKEN, WEBHOOK_BASIC_USER/WEBHOOK_BASIC_PASSWORD "
            "or WEBHOOK_HMAC_SECRET, or set WEBHOOK_ALLOW_UNAUTHENTICATED=true to accept unauthenticated alerts"
        )
    return settings
