"""The data sources, spelled in one place: :data:`SOURCES`, one :class:`SourceSpec` per source, in a fixed order.

A spec says everything the rest of the service needs to know about a source: its name (in reports, check
declarations, ``/health`` and tool names), how to read its settings group and when it counts as configured, how to
open its client from the settings, which read-only LangChain tools /ask and the follow-up round get over that
client, where ``/health`` probes it, and the setting a user sets to enable it. Everything that used to list the
sources one by one derives from this tuple: the clients of a triage and their ``Deps`` fields
(:func:`triage.deps.build_deps`, :func:`triage.deps.close_deps`), the follow-up and /ask tools, the tool allowlist,
the ``/health`` probes, the "not configured (set …)" hints of the checks and the sources /ask's prompt names.

``slot`` is the :class:`~triage.deps.Deps` field the client fills. It is the source's name, except for log backends:
they all fill ``logs``, typed :class:`~triage.log_source.LogSource`, so the log checks run over whichever backend is
configured. Adding a log backend is its client module (satisfying ``LogSource``) plus one entry here (and its
settings group); adding another kind of source also adds its ``Deps`` field and the checks that read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from pydantic import SecretStr

from tools.grafana import GrafanaClient
from tools.http import SourceClient
from tools.loki import LokiClient
from tools.pbs import PbsClient
from tools.prometheus import PrometheusClient
from tools.proxmox import ProxmoxClient
from triage.log_source import LogSource
from triage.settings import Settings, SourceSettings, StartupError

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

# "now" for tool windows without an explicit end (tools.langchain_base.Clock; tests pin it)
Clock = Callable[[], datetime]

C = TypeVar("C", bound=SourceClient)
C_contra = TypeVar("C_contra", bound=SourceClient, contravariant=True)


class ToolFactory(Protocol[C_contra]):
    """The read-only tools over one client (``tools/``'s per-source factories), each answer within ``budget``."""

    def __call__(self, client: C_contra, *, budget: int, clock: Clock) -> list[BaseTool]: ...


@dataclass(frozen=True)
class SourceSpec(Generic[C]):
    """One data source: its settings, client, tools, health probe and enabling setting."""

    name: str
    # how /ask's system prompt names the source
    title: str
    # the Deps field its client fills ("logs" for every log backend)
    slot: str
    client_type: type[C]
    # its settings group (``url``, TLS, timeout: what /health probes)
    group: Callable[[Settings], SourceSettings]
    # whether a client is opened: the group's address and, where the source needs them, its credentials
    configured: Callable[[Settings], bool]
    # the client for configured settings
    factory: Callable[[Settings], C]
    tools: ToolFactory[C]
    # the tools ``tools`` makes: the /ask allowlist (a new tool reaches the agent once it is listed here)
    tool_names: frozenset[str]
    # where it answers cheaply; any HTTP answer below 500 means it is reachable
    health_path: str
    # what a user sets to enable it (named in "not configured" entries of a report)
    enable_setting: str

    def open(self, settings: Settings) -> C | None:
        """A client when the source is configured, else None."""
        return self.factory(settings) if self.configured(settings) else None

    def tools_for(self, client: object, *, budget_chars: int, clock: Clock | None = None) -> list[BaseTool]:
        """This source's tools over ``client``; none when ``client`` is not this source's client (another backend
        in the same slot, a test double, None)."""
        if not isinstance(client, self.client_type):
            return []
        from tools.langchain_base import utc_now
        from tools.langchain_tools import MIN_BUDGET_CHARS

        return self.tools(client, budget=max(MIN_BUDGET_CHARS, budget_chars), clock=clock or utc_now)


# The per-source tool factories of tools/, imported when tools are made: /health and an intake-only API read the
# registry without loading LangChain.
def _prometheus_tools(client: PrometheusClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    from tools.langchain_metrics import prometheus_tools

    return prometheus_tools(client, budget=budget, clock=clock)


def _loki_tools(client: LokiClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    from tools.langchain_metrics import loki_tools

    return loki_tools(client, budget=budget, clock=clock)


def _grafana_tools(client: GrafanaClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    from tools.langchain_metrics import grafana_tools

    return grafana_tools(client, budget=budget, clock=clock)


def _proxmox_tools(client: ProxmoxClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    from tools.langchain_infra import proxmox_tools

    return proxmox_tools(client, budget=budget, clock=clock)


def _pbs_tools(client: PbsClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    from tools.langchain_infra import pbs_tools

    return pbs_tools(client, budget=budget, clock=clock)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _options(group: SourceSettings) -> dict[str, Any]:
    """The connection options every client takes from its group."""
    return {"timeout_s": group.timeout_s, "verify": group.verify_tls, "ca_file": group.ca_file}


def _url(group: SourceSettings) -> str:
    assert group.url is not None, "a client is opened only for a configured source"
    return group.url


def _prometheus(settings: Settings) -> PrometheusClient:
    prom = settings.prometheus
    return PrometheusClient(
        _url(prom),
        token=_secret(prom.token),
        username=prom.username,
        password=_secret(prom.password),
        **_options(prom),
    )


def _loki(settings: Settings) -> LokiClient:
    loki = settings.loki
    return LokiClient(
        _url(loki),
        token=_secret(loki.token),
        username=loki.username,
        password=_secret(loki.password),
        tenant=loki.tenant,
        patterns_mode=loki.patterns,
        **_options(loki),
    )


def _grafana(settings: Settings) -> GrafanaClient:
    grafana = settings.grafana
    assert grafana.token is not None
    return GrafanaClient(
        _url(grafana),
        token=grafana.token.get_secret_value(),
        org_id=grafana.org_id,
        org_tokens=grafana.org_token_map,
        **_options(grafana),
    )


def _proxmox(settings: Settings) -> ProxmoxClient:
    pve = settings.proxmox
    assert pve.token_id is not None and pve.token_secret is not None
    return ProxmoxClient(
        _url(pve), token_id=pve.token_id, token_secret=pve.token_secret.get_secret_value(), **_options(pve)
    )


def _pbs(settings: Settings) -> PbsClient:
    pbs = settings.pbs
    assert pbs.token_id is not None and pbs.token_secret is not None
    return PbsClient(
        _url(pbs), token_id=pbs.token_id, token_secret=pbs.token_secret.get_secret_value(), **_options(pbs)
    )


SOURCES: tuple[SourceSpec[Any], ...] = (
    SourceSpec(
        name="prometheus",
        title="Prometheus (metrics)",
        slot="prometheus",
        client_type=PrometheusClient,
        group=lambda s: s.prometheus,
        configured=lambda s: bool(s.prometheus.url),
        factory=_prometheus,
        tools=_prometheus_tools,
        tool_names=frozenset(
            {"prometheus_query", "prometheus_range_summary", "prometheus_alert_rules", "prometheus_label_values"}
        ),
        health_path="/-/ready",
        enable_setting="PROMETHEUS_URL",
    ),
    SourceSpec(
        name="loki",
        title="Loki (logs)",
        slot="logs",
        client_type=LokiClient,
        group=lambda s: s.loki,
        configured=lambda s: bool(s.loki.url),
        factory=_loki,
        tools=_loki_tools,
        tool_names=frozenset({"loki_query"}),
        health_path="/ready",
        enable_setting="LOKI_URL",
    ),
    SourceSpec(
        name="grafana",
        title="Grafana (alert rules, annotations)",
        slot="grafana",
        client_type=GrafanaClient,
        group=lambda s: s.grafana,
        configured=lambda s: bool(s.grafana.url and s.grafana.token),
        factory=_grafana,
        tools=_grafana_tools,
        tool_names=frozenset({"grafana_alert_rules", "grafana_annotations", "grafana_dashboard"}),
        health_path="/api/health",
        enable_setting="GRAFANA_URL",
    ),
    SourceSpec(
        name="proxmox",
        title="Proxmox VE (guests, nodes, tasks)",
        slot="proxmox",
        client_type=ProxmoxClient,
        group=lambda s: s.proxmox,
        configured=lambda s: bool(s.proxmox.url and s.proxmox.token_id and s.proxmox.token_secret),
        factory=_proxmox,
        tools=_proxmox_tools,
        tool_names=frozenset({"proxmox_guest_status", "proxmox_tasks", "proxmox_nodes"}),
        health_path="/api2/json/version",
        enable_setting="PROXMOX_URL",
    ),
    SourceSpec(
        name="pbs",
        title="Proxmox Backup Server (backup tasks, datastores)",
        slot="pbs",
        client_type=PbsClient,
        group=lambda s: s.pbs,
        configured=lambda s: bool(s.pbs.url and s.pbs.token_id and s.pbs.token_secret),
        factory=_pbs,
        tools=_pbs_tools,
        tool_names=frozenset({"pbs_tasks", "pbs_datastores", "pbs_snapshots"}),
        health_path="/api2/json/version",
        enable_setting="PBS_URL",
    ),
)

# the Loki client fills the "logs" slot: mypy checks here, structurally, that it is a LogSource
_LOKI_IS_A_LOG_SOURCE: type[LogSource] = LokiClient

SOURCE_BY_NAME: dict[str, SourceSpec[Any]] = {spec.name: spec for spec in SOURCES}
# the Deps fields the sources fill, in registry order, each once
SLOTS: tuple[str, ...] = tuple(dict.fromkeys(spec.slot for spec in SOURCES))
# every read-only tool a source may bring
SOURCE_TOOL_NAMES: frozenset[str] = frozenset().union(*(spec.tool_names for spec in SOURCES))


def slot_of(name: str) -> str:
    """The Deps field that holds source ``name``'s client (a name outside the registry is its own field)."""
    spec = SOURCE_BY_NAME.get(name)
    return spec.slot if spec is not None else name


def sources_in(slot: str) -> tuple[str, ...]:
    """The names of the sources that fill ``slot``: ``sources_in("logs")`` are the log backends."""
    return tuple(spec.name for spec in SOURCES if spec.slot == slot)


def open_clients(settings: Settings) -> dict[str, SourceClient]:
    """A client for every configured source, keyed by source name, in registry order.

    Two configured sources for one slot (two log backends) are refused: the checks would read only one of them.
    """
    wanted = [spec for spec in SOURCES if spec.configured(settings)]
    taken: dict[str, SourceSpec[Any]] = {}
    for spec in wanted:  # refused before any client is opened
        other = taken.setdefault(spec.slot, spec)
        if other is not spec:
            raise StartupError(f"{other.enable_setting} and {spec.enable_setting} are both set: configure one of them")
    return {spec.name: spec.factory(settings) for spec in wanted}


def slot_values(clients: Mapping[str, SourceClient]) -> dict[str, Any]:
    """``clients`` (keyed by source name) keyed by the Deps field each fills, ready for ``Deps(**…)``.

    Checked here, once for all sources: each client is its source's client type and fills its own field
    (the field types themselves are checked against the specs' client types by the tests).
    """
    values: dict[str, Any] = {}
    for name, client in clients.items():
        spec = SOURCE_BY_NAME[name]  # a KeyError names a source the registry does not know
        if not isinstance(client, spec.client_type):
            raise TypeError(f"the {name} client is a {type(client).__name__}, not a {spec.client_type.__name__}")
        slot = spec.slot
        if slot in values:
            raise ValueError(f"two clients for the {slot!r} field of a triage's dependencies")
        values[slot] = client
    return values


def source_tools(clients: Iterable[object], *, budget_chars: int, clock: Clock | None = None) -> list[BaseTool]:
    """The read-only tools over ``clients`` (any order, None allowed), in registry order, each answer within
    ``budget_chars``; each client gets the tools of the source whose client it is."""
    present = [client for client in clients if client is not None]
    return [
        tool
        for spec in SOURCES
        for client in present
        for tool in spec.tools_for(client, budget_chars=budget_chars, clock=clock)
    ]
