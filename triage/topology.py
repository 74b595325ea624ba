"""The user's declared topology: which hosts depend on which, and the other names a host goes by in labels.

``TOPOLOGY_FILE`` is an optional YAML file::

    hosts:
      nextcloud:
        depends_on: [db01, nas01]        # where its incidents often start
        aliases: [nextcloud.lan, 10.0.0.21]
      nas01:
        aliases: [truenas, "10.0.0.5"]

``aliases`` map the values a log or metric label may carry (short and full names, addresses, exporter names) to one
host. A dependency need not be declared itself. The file is read and checked once at start-up: an unknown key, a
host that depends on itself or an alias claimed by two hosts stops start-up with a sentence naming the place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_HOSTS = 5000
_HOST_KEYS = frozenset({"depends_on", "aliases"})


class TopologyError(ValueError):
    """The topology file cannot be used; the message says where and why."""


def _names(host: str) -> tuple[str, ...]:
    """A host's name as labels may carry it: as written, lower-cased, and its short name."""
    lowered = host.strip().lower().rstrip(".")
    short = lowered.split(".", 1)[0] if not lowered.replace(".", "").isdigit() else lowered
    return tuple(dict.fromkeys(n for n in (lowered, short) if n))


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | int):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) and str(v).strip() for v in value):
        raise TopologyError(f"{where}: expected a list of names")
    return [str(v).strip() for v in value]


def _entry(raw_name: Any, entry: Any, origin: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """One host's canonical name, dependencies and label names, checked."""
    name = str(raw_name).strip().lower()
    where = f"{origin}: host {raw_name!r}"
    if not name:
        raise TopologyError(f"{origin}: a host has an empty name")
    entry = entry or {}
    if not isinstance(entry, dict):
        raise TopologyError(f"{where}: expected depends_on and/or aliases")
    unknown = set(entry) - _HOST_KEYS
    if unknown:
        raise TopologyError(f"{where}: unknown key(s) {sorted(unknown)} (use depends_on, aliases)")
    needs = tuple(dict.fromkeys(d.lower() for d in _strings(entry.get("depends_on"), f"{where} depends_on")))
    if name in needs:
        raise TopologyError(f"{where}: depends on itself")
    named = [name, *_strings(entry.get("aliases"), f"{where} aliases")]
    return name, needs, tuple(dict.fromkeys(n for alias in named for n in _names(alias)))


@dataclass(frozen=True)
class Topology:
    """Hosts with their dependencies and aliases; look-ups are case-insensitive."""

    depends: dict[str, tuple[str, ...]] = field(default_factory=dict)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _index: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Any, *, origin: str = "topology") -> Topology:
        """Build from parsed YAML (a ``hosts:`` mapping, or the host mapping itself)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise TopologyError(f"{origin}: expected a mapping of hosts")
        hosts = data
        if "hosts" in data:
            if set(data) - {"hosts"}:
                raise TopologyError(f"{origin}: unknown top-level key(s) {sorted(set(data) - {'hosts'})}")
            hosts = data["hosts"]
        if hosts is None:
            return cls()
        if not isinstance(hosts, dict):
            raise TopologyError(f"{origin}: 'hosts' must be a mapping of host name to its entry")
        if len(hosts) > MAX_HOSTS:
            raise TopologyError(f"{origin}: more than {MAX_HOSTS} hosts")
        depends: dict[str, tuple[str, ...]] = {}
        aliases: dict[str, tuple[str, ...]] = {}
        index: dict[str, str] = {}
        for raw_name, entry in hosts.items():
            name, needs, own = _entry(raw_name, entry, origin)
            depends[name] = needs
            aliases[name] = own
            for alias in own:
                holder = index.setdefault(alias, name)
                if holder != name:
                    raise TopologyError(f"{origin}: host {raw_name!r}: alias {alias!r} is already a name of {holder!r}")
        return cls(depends, aliases, index)

    @classmethod
    def load(cls, path: Path) -> Topology:
        """Read and check ``path``; a missing, unreadable or invalid file raises TopologyError."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TopologyError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise TopologyError(f"{path}: not valid YAML{where}") from exc
        return cls.parse(data, origin=str(path))

    def resolve(self, names: list[str] | tuple[str, ...]) -> str | None:
        """The declared host any of ``names`` (label values: host names, addresses, aliases) refers to."""
        for value in names:
            for name in _names(value):
                host = self._index.get(name)
                if host is not None:
                    return host
        return None

    def names(self, host: str) -> tuple[str, ...]:
        """Every name ``host`` may carry in labels (itself, its short name and its aliases)."""
        return self.aliases.get(host.lower(), _names(host))

    def depends_on(self, host: str) -> tuple[str, ...]:
        return self.depends.get(host.lower(), ())


def host_names(host: str) -> tuple[str, ...]:
    """A host's label names when no topology declares it: full and short name."""
    return _names(host)
