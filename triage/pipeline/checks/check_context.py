"""What every check receives: the alert, the plan, the clients, and lookups shared between checks.

The guest behind the alert and the incident's neighbourhood are looked up once per triage (the first check that
needs one does the work, the others await the same result), so the Proxmox API sees one lookup however many checks
use the guest.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reports.models import Alert, Evidence, SourceStatus
from tools.errors import SourceError
from tools.grafana import AlertRule
from tools.proxmox_models import GuestMatch
from triage.deps import Deps
from triage.pipeline.checks._disk_storage import GuestStorage, lookup
from triage.pipeline.checks._log_selectors import host_candidates
from triage.pipeline.checks._neighbourhood import Place, about_backups, mount_servers, resolve, upid_node
from triage.pipeline.plan_model import Plan
from triage.settings import TriageSettings

MAX_GUEST_HINTS = 3


class CheckFailed(Exception):
    """A check could not produce its findings; the message is report text (no secrets)."""


@dataclass
class CheckContext:
    alert: Alert
    plan: Plan
    deps: Deps
    now: datetime
    history_days: int = 30
    partial_failures: dict[str, SourceStatus] = field(default_factory=dict)
    settings: TriageSettings = field(default_factory=TriageSettings)
    _guest: asyncio.Task[GuestMatch | None] | None = None
    _places: asyncio.Task[list[Place]] | None = None
    _storage: asyncio.Task[GuestStorage | None] | None = None
    _rule: asyncio.Task[AlertRule | None] | None = None

    def note_failure(self, name: str, exc: Exception, ms: float = 0.0) -> None:
        """Record that one source inside a multi-source check failed while the check went on with the others."""
        self.partial_failures[name] = SourceStatus(ok=False, ms=round(ms, 1), error=describe_error(exc))

    async def guest(self) -> GuestMatch | None:
        """The Proxmox guest behind the alert (first plan hint that matches), looked up once per triage."""
        if self.deps.proxmox is None or not self.plan.guest_hints:
            return None
        if self._guest is None:
            self._guest = asyncio.create_task(self._find_guest())
        return await asyncio.shield(self._guest)

    async def guest_name(self) -> str | None:
        """The guest's name for matching logs; a failed lookup gives None (the guest check reports the failure)."""
        try:
            match = await self.guest()
        except SourceError:
            return None
        return match.guest.name if match is not None else None

    async def rule(self) -> AlertRule | None:
        """The Grafana rule behind the alert (by its UID), fetched once per triage; None without Grafana or UID."""
        grafana = self.deps.grafana
        if grafana is None or not self.plan.rule_uid:
            return None
        if self._rule is None:
            self._rule = asyncio.create_task(grafana.alert_rule(self.plan.rule_uid))
        return await asyncio.shield(self._rule)

    async def alert_promql(self) -> str | None:
        """The PromQL that fired: the generator URL's, else the Grafana rule's first query when it is PromQL."""
        from triage.pipeline.checks._rules import PROMQL  # _rules builds on this module

        if self.plan.expr:
            return self.plan.expr
        return await self.rule_query(PROMQL)

    async def rule_query(self, language: str) -> str | None:
        """The text of the Grafana rule's first query when it is written in ``language`` (``promql``, ``logql``)."""
        from triage.pipeline.checks._rules import first_query, query_language  # _rules builds on this module

        try:
            rule = await self.rule()
        except SourceError:
            return None  # the alert signal check reports the failed rule look-up
        query = first_query(rule) if rule is not None else None
        if query is None or query_language(query) != language:
            return None
        return query.expr or None

    async def guest_storage(self) -> GuestStorage | None:
        """The storages holding the guest's disks, looked up once per triage; None without a guest, or when its
        configuration cannot be read (noted as the sub-source ``neighbourhood:storage``)."""
        if self._storage is None:
            self._storage = asyncio.create_task(self._find_storage())
        return await asyncio.shield(self._storage)

    async def _find_storage(self) -> GuestStorage | None:
        proxmox = self.deps.proxmox
        try:
            match = await self.guest()
        except SourceError:
            return None
        if proxmox is None or match is None:
            return None
        try:
            found = await lookup(proxmox, match.guest)
        except SourceError as exc:
            self.note_failure("neighbourhood:storage", exc)
            return None
        if found is not None and found.error is not None:
            self.note_failure("neighbourhood:storage", found.error)
        elif found is not None and found.unseen:
            missing = ", ".join(found.unseen)
            self.partial_failures["neighbourhood:storage"] = SourceStatus(
                ok=False,
                error=f"storage {missing} is not in the storage configuration the token can read "
                "(Datastore.Audit on /storage is needed to know its server)",
            )
        return found

    async def places(self) -> list[Place]:
        """The alert's target and its neighbourhood (node, storage, backup server, declared dependencies), once."""
        if self._places is None:
            self._places = asyncio.create_task(self._resolve_places())
        return await asyncio.shield(self._places)

    async def _resolve_places(self) -> list[Place]:
        try:
            match = await self.guest()
        except SourceError:
            match = None
        guest_name = match.guest.name if match is not None else None
        node = match.guest.node if match is not None else None
        storage = await self.guest_storage() if match is not None else None
        prometheus = self.deps.prometheus
        mountpoint = self.plan.mountpoint

        async def mounts(names: tuple[str, ...]) -> list[str]:
            assert prometheus is not None
            try:
                return await mount_servers(prometheus, names, mountpoint)
            except SourceError as exc:
                self.note_failure("neighbourhood:mounts", exc)
                return []

        pbs = self.deps.pbs

        async def backup_host() -> str | None:
            assert pbs is not None
            since = int((self.plan.window_start - timedelta(days=1)).timestamp())
            try:
                tasks = await pbs.tasks(since_s=since, limit=5)
            except SourceError as exc:
                self.note_failure("neighbourhood:backup-server", exc)
                return None
            return next((n for n in (upid_node(t.upid) for t in tasks) if n), None)

        return await resolve(
            host_candidates(self.plan, guest_name),
            node=node if node not in self.plan.nodes else None,
            device=self.plan.device,
            mountpoint=mountpoint,
            disk_servers=storage.servers() if storage is not None else [],
            backup_related=about_backups(self.alert.alertname, self.alert.labels),
            backup_url=pbs.display_url if pbs is not None else None,
            topology=self.deps.topology,
            mounts=mounts if prometheus is not None and self.plan.has_target else None,
            backup_host=backup_host if pbs is not None else None,
        )

    async def search_places(
        self, check: str, places: list[Place], search: Callable[[Place], Awaitable[list[Evidence]]]
    ) -> list[Evidence]:
        """``search`` every place at once. A place that fails becomes the sub-source failure ``check:role`` while the
        others still count; when every place fails, the check fails with the first error."""
        results = await asyncio.gather(*(search(p) for p in places), return_exceptions=True)
        evidence: list[Evidence] = []
        failed: list[tuple[Place, Exception]] = []
        for place, result in zip(places, results, strict=True):
            if isinstance(result, Exception):
                failed.append((place, result))
            elif isinstance(result, BaseException):
                raise result
            else:
                evidence.extend(result)
        if failed and len(failed) == len(results):
            raise failed[0][1]
        for place, exc in failed:
            self.note_failure(f"{check}:{place.role}", exc)
        return evidence

    async def _find_guest(self) -> GuestMatch | None:
        assert self.deps.proxmox is not None
        # each miss costs a cluster listing (and, for an address, guest configs): try the best few hints only
        for hint in self.plan.guest_hints[:MAX_GUEST_HINTS]:
            match = await self.deps.proxmox.find_guest(hint)
            if match is not None:
                return match
        return None

    async def close(self) -> None:
        """Stop a guest lookup nobody waits for any more (its checks timed out)."""
        for task in (self._places, self._storage, self._guest, self._rule):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    @property
    def epoch_window(self) -> tuple[int, int]:
        return int(self.plan.window_start.timestamp()), int(self.plan.window_end.timestamp())


def describe_error(exc: BaseException) -> str:
    """A failure as report text: data-source errors as the client words them (redacted), others by type only."""
    if isinstance(exc, SourceError | CheckFailed):
        return str(exc)[:500]
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ValueError) and type(exc).__name__ == "SelectorError":
        return f"cannot build a query: {exc}"[:300]
    return f"failed: {type(exc).__name__}"


def evidence_id(prefix: str, *parts: object) -> str:
    """A short id that is the same for the same finding on every run (the LLM cites it, reports link to it)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:6]
    key = str(parts[0]) if parts else ""
    return f"{prefix}-{key}-{digest}" if key and key.isidentifier() else f"{prefix}-{digest}"
