"""Delivery of a report to Grafana: one annotation per report, linking to the report page.

* On the alert's dashboard and panel when the alert names them, else on those its rule names (see
  :mod:`reports.grafana_target`), otherwise an organisation annotation (shown on every dashboard whose annotation
  query asks for the ``sre-triage`` tag). A dashboard that no longer exists falls back to an organisation
  annotation instead of losing the report. The alert's ``orgId`` picks the organisation.
* A region from ``starts_at`` to the time of the report, extended to ``ends_at`` when the alert resolves — by
  PATCH of the same annotation, never a second one.
* Idempotent: a retried job finds the annotation it made before, first through ``report.annotation``, else by
  the ``report:<id>`` tag, and updates it instead of creating another.
* Grafana failures raise :class:`DeliveryError` carrying the report with its delivery state set, so the caller
  stores that state (the page shows it) and, when ``transient``, retries after :func:`retry_delay_s`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from reports.grafana_target import annotation_target
from reports.links import LinkSigner, SettingsLike
from reports.models import AnnotationRef, DeliveryState, Report
from reports.render import render_annotation_text
from reports.text import one_line
from tools.backoff import backoff_delay_s
from tools.errors import SourceError, SourceHTTPError
from tools.grafana import GrafanaClient

# the tag every annotation of a report carries; the change check ignores annotations with it (its own)
ANNOTATION_TAG = "sre-triage"
REPORT_TAG_PREFIX = "report:"
MAX_TAG_CHARS = 100
RETRY_BASE_S = 5.0
RETRY_MAX_S = 300.0


class DeliveryError(Exception):
    """Grafana did not take the annotation. ``report`` carries the delivery state to store; retry when transient."""

    def __init__(self, message: str, *, transient: bool, report: Report) -> None:
        super().__init__(message)
        self.transient = transient
        self.report = report


def retry_delay_s(attempt: int) -> float:
    """Backoff before delivery attempt ``attempt + 1`` (attempt counts from 1): 5 s, 10 s, 20 s … up to 5 min."""
    return backoff_delay_s(attempt, first_s=RETRY_BASE_S, cap_s=RETRY_MAX_S)


def report_tag(report_id: str) -> str:
    return REPORT_TAG_PREFIX + report_id


def annotation_tags(report: Report) -> list[str]:
    """``sre-triage``, the alert name, the severity (when set) and ``report:<id>``, de-duplicated."""
    tags = [ANNOTATION_TAG, one_line(report.alert.alertname, MAX_TAG_CHARS)]
    if report.alert.severity:
        tags.append(one_line(report.alert.severity, MAX_TAG_CHARS))
    tags.append(report_tag(report.id))
    return list(dict.fromkeys(t for t in tags if t))


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _end_ms(report: Report, now: datetime) -> int:
    end = report.resolved_at or report.alert.ends_at or now
    return max(_ms(end), _ms(report.alert.starts_at))


async def _existing(report: Report, grafana: GrafanaClient) -> AnnotationRef | None:
    if report.annotation is not None:
        return report.annotation
    org_id = report.alert.org_id
    found = await grafana.find_annotations(tags=[report_tag(report.id)], limit=10, org_id=org_id)
    mine = [a for a in found if report_tag(report.id) in a.tags]
    if not mine:
        return None
    first = min(mine, key=lambda a: a.id)
    return AnnotationRef(
        id=first.id, dashboard_uid=first.dashboard_uid or None, panel_id=first.panel_id or None, org_id=org_id
    )


async def _create(report: Report, grafana: GrafanaClient, text: str, end_ms: int) -> AnnotationRef:
    tags = annotation_tags(report)
    start_ms = _ms(report.alert.starts_at)
    org_id = report.alert.org_id  # the alert's organisation (multi-org Grafana), None: the configured one
    target = await annotation_target(report.alert, grafana)
    dashboard_uid, panel_id = target.dashboard_uid, target.panel_id
    if dashboard_uid:
        try:
            new_id = await grafana.create_annotation(
                text, tags, start_ms, time_end_ms=end_ms, dashboard_uid=dashboard_uid, panel_id=panel_id, org_id=org_id
            )
            return AnnotationRef(id=new_id, dashboard_uid=dashboard_uid, panel_id=panel_id, org_id=org_id)
        except SourceHTTPError as exc:
            # 400/404: the dashboard was deleted or renamed since the rule was written; the report still belongs
            # on the timeline, so it becomes an organisation annotation.
            if exc.status_code not in (400, 404):
                raise
    new_id = await grafana.create_annotation(text, tags, start_ms, time_end_ms=end_ms, org_id=org_id)
    return AnnotationRef(id=new_id, org_id=org_id)


def _failed(report: Report, exc: SourceError, now: datetime) -> DeliveryError:
    state = DeliveryState.pending if exc.transient else DeliveryState.failed
    # SourceError messages never carry credentials (tools.errors contract); bounded for the page.
    message = one_line(str(exc), 500)
    failed = report.model_copy(update={"delivery": state, "delivery_error": message, "updated_at": now})
    verb = "will be retried" if exc.transient else "gave up"
    return DeliveryError(f"annotation delivery {verb}: {message}", transient=exc.transient, report=failed)


async def _deliver(report: Report, grafana: GrafanaClient | None, settings: SettingsLike, now: datetime) -> Report:
    if grafana is None:
        return report.model_copy(update={"delivery": DeliveryState.disabled, "delivery_error": None, "updated_at": now})
    link = LinkSigner.from_settings(settings).report_url(report.id, now=now.timestamp())
    text = render_annotation_text(report, link)
    end_ms = _end_ms(report, now)
    try:
        ref = await _existing(report, grafana)
        if ref is None:
            ref = await _create(report, grafana, text, end_ms)
        else:
            await grafana.patch_annotation(
                ref.id, text=text, time_end_ms=end_ms, tags=annotation_tags(report), org_id=ref.org_id
            )
    except SourceError as exc:
        raise _failed(report, exc, now) from exc
    return report.model_copy(
        update={"annotation": ref, "delivery": DeliveryState.delivered, "delivery_error": None, "updated_at": now}
    )


async def deliver(
    report: Report, grafana: GrafanaClient | None, settings: SettingsLike, *, now: datetime | None = None
) -> Report:
    """Put ``report`` on Grafana (create, or update the annotation a previous attempt made) and return it updated.

    ``grafana`` None means Grafana is not configured: the report comes back with ``delivery = disabled``.
    Raises :class:`DeliveryError` when Grafana fails; ``error.report`` has the state to store.
    """
    return await _deliver(report, grafana, settings, now or datetime.now(UTC))


async def deliver_resolve(
    report: Report,
    grafana: GrafanaClient | None,
    settings: SettingsLike,
    *,
    ends_at: datetime | None = None,
    now: datetime | None = None,
) -> Report:
    """Extend the report's annotation to the alert's end and refresh its text; return the report updated.

    The end is ``ends_at`` when given (it is also recorded as ``resolved_at``), else ``resolved_at``, else
    ``alert.ends_at``. The same annotation is patched; when none exists yet (the triage delivery never succeeded)
    it is created as a finished region. Same errors as :func:`deliver`.
    """
    if ends_at is not None:
        report = report.model_copy(update={"resolved_at": ends_at})
    return await _deliver(report, grafana, settings, now or datetime.now(UTC))
