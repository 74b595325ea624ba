"""Notification payloads of the two senders, and their normalisation to :class:`~reports.models.Alert`.

* Grafana unified alerting, webhook contact point, payload ``version: "1"``.
* Prometheus Alertmanager, ``webhook_config`` receiver, payload ``version: "4"``.

Pure pydantic, no HTTP: the webhook and the ``sre-triage triage FILE`` command both parse with it. Unknown extra
fields are ignored (both senders add fields over time); anything we rely on is validated, and a failure names the
field (``alerts.0.startsAt``) so the sender's configuration can be fixed.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from reports.models import ZERO_TIME, Alert, AlertStatus, labels_fingerprint
from tools.numbers import ascii_int

# Go's RFC 3339 output carries up to nine fractional digits; Python keeps six.
_FRACTION = re.compile(r"(\.\d{6})\d+")
_DASHBOARD_PATH = re.compile(r"/d/([^/?#]+)")
_MAX_FIELD_CHARS = 200
# A start time outside these bounds is no real alert's (Grafana's zero time, year 9999). It stays the occurrence's
# identity (re-sends keep deduplicating), but the triage anchors its time window elsewhere: see
# :func:`plausible_start`. A day of clock skew is allowed.
EARLIEST_START = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_SKEW = timedelta(days=1)
# An end time beyond this is "no end" (some senders write year 9999), like Grafana's zero time.
LATEST_END = datetime(2200, 1, 1, tzinfo=UTC)


def plausible_start(starts_at: datetime, now: datetime) -> bool:
    """Whether ``starts_at`` can be a real alert's start (1970 up to a day after ``now``)."""
    return EARLIEST_START <= starts_at <= now + FUTURE_SKEW


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        return _FRACTION.sub(r"\1", value.strip())
    return value


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, BeforeValidator(_parse_time)]


class PayloadError(ValueError):
    """A notification body is not a valid payload; ``field`` names the first offending field."""

    def __init__(self, message: str, *, field: str = "", not_json: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.not_json = not_json


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class PayloadAlert(_Model):
    """One alert as both senders put it in ``alerts[]`` (Grafana adds the optional fields)."""

    status: AlertStatus
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: Timestamp = Field(alias="startsAt")
    ends_at: Timestamp | None = Field(None, alias="endsAt")
    generator_url: str | None = Field(None, alias="generatorURL")
    fingerprint: str | None = None
    # Grafana only
    silence_url: str | None = Field(None, alias="silenceURL")
    dashboard_url: str | None = Field(None, alias="dashboardURL")
    panel_url: str | None = Field(None, alias="panelURL")
    image_url: str | None = Field(None, alias="imageURL")
    values: dict[str, float | None] | None = None
    value_string: str | None = Field(None, alias="valueString")
    org_id: int | None = Field(None, alias="orgId")


class Notification(_Model):
    """Fields both senders share; see the two subclasses."""

    receiver: str = ""
    status: AlertStatus
    alerts: list[PayloadAlert]
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str | None = Field(None, alias="externalURL")
    group_key: str | None = Field(None, alias="groupKey")
    truncated_alerts: int = Field(0, ge=0, alias="truncatedAlerts")


class GrafanaPayload(Notification):
    """Grafana unified alerting webhook body (``version: "1"``)."""

    version: Literal["1"]
    org_id: int | None = Field(None, alias="orgId")
    title: str | None = None
    state: str | None = None
    message: str | None = None


class AlertmanagerPayload(Notification):
    """Alertmanager webhook body (``version: "4"``)."""

    version: Literal["4"]


Source = Literal["grafana", "alertmanager"]
PAYLOAD_TYPES: dict[Source, type[Notification]] = {"grafana": GrafanaPayload, "alertmanager": AlertmanagerPayload}


def describe_validation_error(exc: ValidationError) -> PayloadError:
    """Turn pydantic's error list into one sentence naming the first bad field (in the sender's spelling)."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"loc": (), "msg": "invalid payload"}
    field = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    where = f"{_clip(field)}: " if field else ""
    return PayloadError(f"{where}{message}{more}", field=field)


def _clip(text: str) -> str:
    # field names come from the sender's JSON keys: keep error messages bounded
    return text if len(text) <= _MAX_FIELD_CHARS else text[:_MAX_FIELD_CHARS] + "…"


def parse_payload_json(source: Source, body: bytes) -> Notification:
    """Validate a raw JSON body (parsed in pydantic-core, the webhook's fast path); errors as :func:`parse_payload`.

    A body that is not JSON at all raises :class:`PayloadError` with ``field == ""`` and ``not_json`` set.
    """
    try:
        return PAYLOAD_TYPES[source].model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] == "json_invalid":
            detail = str(errors[0]["msg"]).removeprefix("Invalid JSON: ")
            raise PayloadError(f"the body is not valid JSON: {detail}", not_json=True) from None
        if errors and errors[0]["type"] == "model_type" and not errors[0]["loc"]:
            raise PayloadError("the body must be a JSON object") from None
        raise describe_validation_error(exc) from None


def parse_payload(source: Source, data: Any) -> Notification:
    """Validate a decoded JSON body as a ``source`` notification; raise :class:`PayloadError` naming the field."""
    if not isinstance(data, dict):
        raise PayloadError("the body must be a JSON object", field="")
    try:
        return PAYLOAD_TYPES[source].model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc) from None


def normalise(source: Source, payload: Notification) -> list[Alert]:
    """One :class:`Alert` per entry of ``payload.alerts``, in order."""
    return [_alert(source, payload, item) for item in payload.alerts]


def parse_alerts(source: Source, data: Any) -> list[Alert]:
    """Validate and normalise in one step (the CLI's entry point)."""
    return normalise(source, parse_payload(source, data))


def _alert(source: Source, payload: Notification, item: PayloadAlert) -> Alert:
    starts_at = _aware(item.starts_at)
    ends_at = _aware(item.ends_at) if item.ends_at is not None else None
    if ends_at is not None and (ends_at <= ZERO_TIME or ends_at >= LATEST_END):
        ends_at = None
    dashboard_uid, panel_id = _dashboard_ref(item)
    grafana = source == "grafana"
    return Alert(
        fingerprint=item.fingerprint or labels_fingerprint(item.labels),
        alertname=item.labels.get("alertname", "") or "(unnamed alert)",
        status=item.status,
        labels=item.labels,
        annotations=item.annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=item.generator_url or None,
        receiver=payload.receiver or None,
        group_key=payload.group_key,
        source=source,
        dashboard_uid=dashboard_uid,
        panel_id=panel_id,
        # JSON has no NaN/Infinity, but senders (and lenient parsers) produce them; they are not measurements
        values={k: v for k, v in (item.values or {}).items() if v is not None and math.isfinite(v)},
        org_id=_org_id(item, payload) if grafana else None,
        silence_url=item.silence_url or None,
        dashboard_url=item.dashboard_url or None,
        panel_url=item.panel_url or None,
        grafana_url=(payload.external_url or None) if grafana else None,
    )


def _org_id(item: PayloadAlert, payload: Notification) -> int | None:
    """The alert's organisation: its own ``orgId``, else the ``orgId`` of its Grafana links, else the payload's.

    In a multi-org Grafana one contact point can carry alerts of one organisation only, but the alert's own value
    (and the links Grafana builds for it) are the most specific, so they win.
    """
    if item.org_id is not None:
        return item.org_id
    for url in (item.generator_url, item.silence_url, item.panel_url, item.dashboard_url):
        values = parse_qs(urlsplit(url).query).get("orgId") if url else None
        if values and values[0].isdigit() and len(values[0]) < 10:
            return int(values[0])
    return getattr(payload, "org_id", None)


def _dashboard_ref(item: PayloadAlert) -> tuple[str | None, int | None]:
    """Dashboard UID and panel id: Grafana's reserved ``__dashboardUid__``/``__panelId__`` keys, else its URLs."""
    uid = item.annotations.get("__dashboardUid__") or item.labels.get("__dashboardUid__")
    panel = item.annotations.get("__panelId__") or item.labels.get("__panelId__")
    for url in (item.panel_url, item.dashboard_url):
        if not url:
            continue
        parts = urlsplit(url)
        if uid is None and (match := _DASHBOARD_PATH.search(parts.path)):
            uid = match.group(1)
        if panel is None:
            views = parse_qs(parts.query).get("viewPanel")
            panel = views[0] if views else None
    return uid or None, _panel_number(panel)


def _panel_number(value: str | None) -> int | None:
    # Grafana panel ids are integers, but the key is free text when a rule sets it by hand
    if value is None:
        return None
    text = value.strip().removeprefix("panel-")
    return ascii_int(text, max_digits=9)
