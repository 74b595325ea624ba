"""Shared by the Loki-based checks: which stream selectors fit the alert, and the template of a log line.

Loki label names differ per shipper (Promtail, Alloy, Docker driver, journald), so the selectors are chosen from the
label names the Loki actually has in the window (one ``labels`` request), with the alert's values matched exactly
(case-insensitively) through :mod:`tools.selectors`.
"""

from __future__ import annotations

import re

from tools.selectors import Matcher, logql_selector, regex_escape
from triage.pipeline.plan_model import Plan

MAX_SELECTORS = 2
TEMPLATE_CHARS = 200
SAMPLE_CHARS = 300

SERVICE_LOG_LABELS = ("container", "container_name", "service_name", "compose_service", "service", "app", "unit")
HOST_LOG_LABELS = ("host", "hostname", "nodename", "instance", "node", "machine")

_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"), "<ts>"),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b"), "<ts>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}\b"), "<ip>"),
    (re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"), "<str>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"(?<![A-Za-z])\d+(?:\.\d+)?"), "<n>"),
)
_SPACES = re.compile(r"\s+")

# the kind of change a log line announces; only a name and a nudge of the score, never what is read
CHANGE_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("oom", r"out of memory|oom[-_ ]?kill|killed process|oom-killer|memory cgroup out of memory"),
        ("reboot", r"reboot|system is rebooting|kernel: linux version|startup finished in"),
        ("upgrade", r"upgrad|unpacking|dpkg|apt-get|unattended-upgrade|new version"),
        ("deploy", r"deploy|rollout|rolled out|pulling image|image pulled|new release"),
        # pvedaemon logs a guest's configuration change as "update VM 460: -memory 2048"
        ("config", r"config(uration)? (changed|reload|updated)|reloading|reloaded|sighup|update (vm|ct) \d+:"),
        ("restart", r"restart|started|starting|stopping|stopped|exited with|shutting down"),
    )
)


def change_kind(line: str) -> str | None:
    """The kind of change a log line announces (``oom``, ``reboot``, ``config`` …); None when it announces none."""
    return next((kind for kind, pattern in CHANGE_KINDS if pattern.search(line)), None)


def template(line: str) -> str:
    """A log line with its variable parts masked, so lines that differ only in them group together."""
    text = line.strip()
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return _SPACES.sub(" ", text)[:TEMPLATE_CHARS]


def clip(text: str, limit: int = SAMPLE_CHARS) -> str:
    flat = _SPACES.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def any_of(name: str, values: list[str], *, with_port: bool = False, suffix: str = "") -> Matcher:
    alternatives = "|".join(regex_escape(v) for v in dict.fromkeys(values))
    pattern = f"(?i)({alternatives}){suffix}" + ("(:[0-9]+)?" if with_port else "")
    return Matcher(name, pattern, "=~")


def host_candidates(plan: Plan, guest_name: str | None = None) -> list[str]:
    """Every name the alert's host may carry in log labels: full and short host names, addresses, the guest."""
    names = [h for host in plan.hosts for h in (host, host.split(".", 1)[0])]
    names += list(plan.addresses) + list(plan.nodes)
    if guest_name:
        names.append(guest_name)
    return list(dict.fromkeys(names))


def choose_selectors(
    available: set[str], plan: Plan, guest_name: str | None, *, extra_hosts: tuple[str, ...] = ()
) -> list[str]:
    """Up to two LogQL selectors, for the alert's service and its host, using the label names ``available`` in this
    Loki. Each matches any of the candidate values case-insensitively, so an alert naming a host by address still
    finds the logs its shipper labels with the guest's name (``extra_hosts``: more names the host goes by, such as
    declared aliases)."""
    selectors: list[str] = []
    services = list(plan.services)
    service_labels = [n for n in SERVICE_LOG_LABELS if n in available]
    if services and service_labels:
        name = service_labels[0]
        values = [s.removesuffix(".service") for s in services] if name == "unit" else services
        suffix = r"(\.service)?" if name == "unit" else ""
        selectors.append(logql_selector(matchers=[any_of(name, values, suffix=suffix)]))
    hosts = list(dict.fromkeys([*host_candidates(plan, guest_name), *extra_hosts]))
    host_labels = [n for n in HOST_LOG_LABELS if n in available]
    if hosts and host_labels:
        name = host_labels[0]
        selectors.append(logql_selector(matchers=[any_of(name, hosts, with_port=name == "instance")]))
    if not selectors and plan.job and "job" in available:
        selectors.append(logql_selector({"job": plan.job}))
    if not selectors and plan.namespace and "namespace" in available:
        selectors.append(logql_selector({"namespace": plan.namespace}))
    return list(dict.fromkeys(selectors))[:MAX_SELECTORS]
