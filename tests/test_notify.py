"""Notifications through Apprise against real loopback receivers: the exact bytes a webhook, ntfy and an SMTP server
get, the severity filter, the Redis rate limit shared by workers, failures with no secret in them."""

from __future__ import annotations

import asyncio
import email
import json
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message as EmailMessage

import pytest
from redis.asyncio import Redis

from reports.links import LinkSigner
from reports.models import ChannelDelivery, Report
from tests.support.receivers import http_receiver, smtp_receiver
from tests.support.sample_reports import START, sample_alert, sample_report
from triage.notify.apprise_sender import AppriseSender, privacy_label, scrub
from triage.notify.chat import ChatNotifier
from triage.notify.rate import RateLimiter
from triage.settings import ApiSettings

NOW = START + timedelta(seconds=20)


@dataclass
class _Settings:
    api: ApiSettings


SIGNER = LinkSigner.from_settings(_Settings(ApiSettings(api_token="test-api-token", public_url="https://triage.lan")))


def _notifier(url: str, **fields: object) -> ChatNotifier:
    return ChatNotifier(key="notify-1", sender=AppriseSender(url, timeout_s=10), signer=SIGNER, **fields)  # type: ignore[arg-type]


def _expected_body(report: Report) -> str:
    link = SIGNER.report_url(report.id, now=NOW.timestamp())
    return (
        "pve2 ran out of memory 4 minutes after the nightly PBS backup of nextcloud (lxc/115) started; the "
        "container's memory grew from 3.1 GiB to 7.8 GiB and the kernel OOM-killed php-fpm twice.\n"
        "Most likely: Backup snapshot of lxc/115 doubled the container's page cache (72%)\n"
        f"Report: {link}"
    )


TITLE = "[FIRING] HostMemoryPressure on instance pve2:9100 (critical)"


async def test_a_json_webhook_gets_the_alert_summary_cause_and_signed_link() -> None:
    report = sample_report()
    with http_receiver() as receiver:
        outcome = await _notifier(f"json://{receiver.hostport}/hooks/triage").deliver(report, "triaged", NOW)
    assert outcome.state == "delivered" and outcome.error is None
    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/triage")
    assert request.headers["Content-Type"] == "application/json"
    expected = {
        "version": "1.0",
        "title": TITLE,
        "message": _expected_body(report),
        "attachments": [],
        "type": "failure",
    }
    assert request.body == json.dumps(expected).encode()


async def test_the_link_in_the_message_opens_the_report_until_it_expires() -> None:
    report = sample_report()
    with http_receiver() as receiver:
        await _notifier(f"json://{receiver.hostport}/hook").deliver(report, "triaged", NOW)
    link = json.loads(receiver.requests[0].body)["message"].rsplit("Report: ", 1)[1]
    query = dict(part.split("=") for part in link.split("?", 1)[1].split("&"))
    assert link.startswith(f"https://triage.lan/reports/{report.id}?")
    assert SIGNER.verify(report.id, query["exp"], query["sig"], now=NOW.timestamp())


async def test_ntfy_gets_topic_title_and_message_with_basic_auth_that_is_never_shown() -> None:
    report = sample_report()
    with http_receiver() as receiver:
        notifier = _notifier(f"ntfy://alice:hunter2secret@{receiver.hostport}/homelab-alerts")
        outcome = await notifier.deliver(report, "triaged", NOW)
    assert outcome.state == "delivered"
    [request] = receiver.requests
    assert request.path == "/"
    assert request.headers["Authorization"] == "Basic YWxpY2U6aHVudGVyMnNlY3JldA=="
    assert (
        request.body
        == json.dumps({"topic": "homelab-alerts", "title": TITLE, "message": _expected_body(report)}).encode()
    )
    assert notifier.label == f"ntfy://alice:[REDACTED]@{receiver.hostport}/…"


def _text_part(message: EmailMessage) -> bytes:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError("no text/plain part")


async def test_email_through_a_real_smtp_server_has_the_subject_addresses_and_body() -> None:
    report = sample_report()
    with smtp_receiver() as smtp:
        url = f"mailto://{smtp.host}:{smtp.port}?from=triage@lab.example&to=ops@lab.example&mode=insecure"
        outcome = await _notifier(url).deliver(report, "triaged", NOW)
    assert outcome.state == "delivered", outcome.error
    [mail] = smtp.mails
    assert mail.mail_from == "triage@lab.example" and mail.rcpt_tos == ["ops@lab.example"]
    assert f"\r\nSubject: {TITLE}\r\n".encode() in mail.content
    assert b"\r\nFrom: triage@lab.example\r\nTo: ops@lab.example\r\n" in mail.content
    parsed = email.message_from_bytes(mail.content)
    assert _text_part(parsed) == _expected_body(report).replace("\n", "\r\n").encode() + b"\r\n"


async def test_the_severity_filter_sends_nothing_for_other_severities() -> None:
    warning = sample_report(alert=sample_alert(labels={"alertname": "DiskFilling", "severity": "warning"}))
    unlabelled = sample_report(alert=sample_alert(alertname="Probe", labels={"alertname": "Probe"}))
    with http_receiver() as receiver:
        notifier = _notifier(f"json://{receiver.hostport}/hook", severities=frozenset({"critical", "none"}))
        assert (await notifier.deliver(warning, "triaged", NOW)).state == "filtered"
        assert (await notifier.deliver(unlabelled, "triaged", NOW)).state == "delivered"
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["title"] == "[FIRING] Probe"


async def test_a_storm_on_two_workers_sends_one_message_and_the_next_counts_the_rest(redis: Redis) -> None:
    reports = [sample_report(alert=sample_alert(fingerprint=f"storm-{i}")) for i in range(6)]
    with http_receiver() as receiver:
        url = f"json://{receiver.hostport}/hook"
        # two notifiers with their own connection each stand for two worker processes
        workers = [_notifier(url, limiter=RateLimiter(redis, window_s=1)) for _ in range(2)]
        outcomes = await asyncio.gather(*(workers[i % 2].deliver(r, "triaged", NOW) for i, r in enumerate(reports)))
        assert sorted(o.state for o in outcomes) == ["delivered"] + ["rate_limited"] * 5
        assert len(receiver.requests) == 1
        await asyncio.sleep(1.1)
        later = sample_report(alert=sample_alert(fingerprint="after-the-storm"))
        assert (await workers[0].deliver(later, "triaged", NOW)).state == "delivered"
    body = json.loads(receiver.requests[1].body)["message"]
    assert body.endswith("\n(5 more notifications held back by the rate limit since the last one.)")


async def test_a_retry_of_the_report_holding_the_slot_may_send_again(redis: Redis) -> None:
    report = sample_report()
    with http_receiver() as receiver:
        receiver.fail_next(1, status=503)
        notifier = _notifier(f"json://{receiver.hostport}/hook", limiter=RateLimiter(redis, window_s=60))
        failed = await notifier.deliver(report, "triaged", NOW)
        assert failed.state == "pending" and failed.transient
        assert (await notifier.deliver(report, "triaged", NOW)).state == "delivered"
        other = sample_report(alert=sample_alert(fingerprint="second"))
        assert (await notifier.deliver(other, "triaged", NOW)).state == "rate_limited"
    assert len(receiver.requests) == 2


async def test_a_failed_send_says_why_without_the_urls_secrets() -> None:
    report = sample_report()
    with http_receiver() as receiver:
        receiver.fail_next(5, status=500)
        notifier = _notifier(f"json://bob:pa55word-xyz@{receiver.hostport}/hook/t0k3n-abcdef")
        outcome = await notifier.deliver(report, "triaged", NOW)
    assert outcome.state == "pending" and outcome.transient
    assert outcome.error is not None and "500" in outcome.error
    for secret in ("pa55word-xyz", "t0k3n-abcdef"):
        assert secret not in outcome.error and secret not in notifier.label


async def test_an_unreachable_service_is_a_transient_failure() -> None:
    outcome = await _notifier("json://127.0.0.1:1/hook").deliver(sample_report(), "triaged", NOW)
    assert outcome.state == "pending" and outcome.transient
    assert outcome.error and "Connection error" in outcome.error


async def test_resolve_messages_follow_only_a_firing_message_that_went_out() -> None:
    resolved_at = START + timedelta(minutes=37)
    report = sample_report(resolved_at=resolved_at)
    held = report.model_copy(
        update={"channels": {"notify-1": ChannelDelivery(label="x", state="rate_limited", event="triaged")}}
    )
    with http_receiver() as receiver:
        notifier = _notifier(f"json://{receiver.hostport}/hook")
        assert (await notifier.deliver(held, "resolved", NOW)).state == "rate_limited"
        assert (await notifier.deliver(report, "resolved", NOW)).state == "delivered"
        quiet = _notifier(f"json://{receiver.hostport}/hook", on_resolve=False)
        assert (await quiet.deliver(report, "resolved", NOW)).state == "skipped"
    [request] = receiver.requests
    sent = json.loads(request.body)
    assert sent["title"] == "[RESOLVED] HostMemoryPressure on instance pve2:9100 (critical)"
    assert sent["type"] == "success"
    assert sent["message"].startswith("Resolved after 37 min.\n")
    assert "Most likely" not in sent["message"]


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("discord://123456789/AbCdEfGhIjKlMnOp", "AbCdEfGhIjKlMnOp"),
        ("ntfys://user:Sup3rS3cret@ntfy.example.org/topic", "Sup3rS3cret"),
        ("mailto://mailer:Pa55w0rd@smtp.example.org?to=ops@example.org", "Pa55w0rd"),
        ("json://hooks.example.org/path?token=abcdef123456", "abcdef123456"),
    ],
)
def test_channel_labels_and_scrubbed_errors_never_show_secrets(url: str, secret: str) -> None:
    label = privacy_label(url)
    assert secret not in label
    assert secret not in scrub(f"sending to {url} failed", url, label)
