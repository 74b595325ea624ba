"""A sender's test notification: Grafana's contact-point "Test" button, recognised and answered without a triage.

Grafana builds the test alert itself (``newTestAlert`` in its notifier): labels ``alertname="TestAlert"`` and
``instance="Grafana"``, annotation ``summary="Notification test"``, and the value string
``[ metric='foo' labels={instance=bar} value=10 ]``, which its webhook sends as ``valueString``. The custom test
lets the user add or override labels and annotations, so either the ``instance`` label or the value string is
enough, as long as the alert is named ``TestAlert``.

Such an alert gets a short report with status ``test`` (the operator sees on ``/reports`` that the contact point
reaches us), and no job: no checks, no LLM call, no annotation.
"""

from __future__ import annotations

from datetime import UTC, datetime

from reports.models import Alert, DeliveryState, Report, ReportStatus
from reports.payloads import PayloadAlert
from reports.text import one_line

TEST_ALERTNAME = "TestAlert"
TEST_INSTANCE = "Grafana"
TEST_VALUE_STRING = "[ metric='foo' labels={instance=bar} value=10 ]"


def is_test_alert(item: PayloadAlert) -> bool:
    """True for the alert Grafana sends when a contact point's "Test" button is pressed."""
    if item.labels.get("alertname") != TEST_ALERTNAME:
        return False
    return item.labels.get("instance") == TEST_INSTANCE or (item.value_string or "").strip() == TEST_VALUE_STRING


def receipt_report(alert: Alert, *, now: datetime | None = None) -> Report:
    """The short report stored for a test notification: what arrived, and that nothing was triaged."""
    now = now or datetime.now(UTC)
    receiver = one_line(alert.receiver or "", 120) or "(unnamed)"
    summary = (
        f"Test notification received from the Grafana contact point {receiver}: the webhook URL, its "
        "authentication and the payload work. It was not triaged (no checks, no LLM call, no annotation)."
    )
    return Report(
        id=alert.occurrence_key,
        status=ReportStatus.test,
        alert=alert,
        summary=summary,
        delivery=DeliveryState.skipped,
        created_at=now,
        updated_at=now,
    )
