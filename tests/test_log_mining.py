"""Log change detection without vocabularies: new messages, new variants of a known one, surges, slow burns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tools.loki import LogEntry
from triage.pipeline.checks._mining import PRIOR_PLAIN, compare, prior

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR_S = 3600.0


def _entries(line: str, minutes: list[float], labels: dict[str, str] | None = None) -> list[LogEntry]:
    return [
        LogEntry(int((T0 + timedelta(minutes=m)).timestamp() * 1e9), line, labels or {"host": "h"}) for m in minutes
    ]


def _run(now: list[LogEntry], before: list[LogEntry], **kwargs: object) -> dict[str, tuple[str, float]]:
    found = compare(now, before, current_span_s=HOUR_S, baseline_span_s=HOUR_S, **kwargs)  # type: ignore[arg-type]
    return {c.template.key: (c.status, c.score) for c in found}


def test_a_message_the_baseline_never_had_is_new_whatever_its_level() -> None:
    before = _entries("GET /health 200", list(range(-120, -60, 5)))
    now = _entries("GET /health 200", list(range(-60, 0, 5))) + _entries("keepalived: Entering BACKUP STATE", [-3])
    found = _run(now, before)
    assert list(found) == ["keepalived: Entering BACKUP STATE"]
    assert found["keepalived: Entering BACKUP STATE"][0] == "new pattern"


def test_a_state_word_that_changed_is_a_new_variant_of_a_known_message() -> None:
    before = _entries("zed: pool tank state is ONLINE", list(range(-120, -60, 10)))
    now = _entries("zed: pool tank state is ONLINE", [-50, -40]) + _entries("zed: pool tank state is DEGRADED", [-5])
    found = _run(now, before)
    assert found == {
        "zed: pool tank state is DEGRADED": (
            "new variant of a known message",
            found["zed: pool tank state is DEGRADED"][1],
        )
    }


def test_new_values_of_an_id_like_word_are_routine() -> None:
    users = ["alice", "bob", "carol", "dave", "erin"]
    before = [e for i, u in enumerate(users) for e in _entries(f"session opened for user {u}", [-110 + i * 10])]
    now = _entries("session opened for user mallory", [-20])
    assert _run(now, before) == {}


def test_a_steady_line_is_not_news_and_a_tenfold_one_is() -> None:
    before = _entries("retrying upstream", list(range(-120, -60, 6))) + _entries("tick", list(range(-120, -60, 6)))
    now = _entries("retrying upstream", [m / 6 for m in range(-360, 0)]) + _entries("tick", list(range(-60, 0, 6)))
    found = _run(now, before)
    assert list(found) == ["retrying upstream"]
    assert found["retrying upstream"][0] == "10 in the previous window"


def test_doubling_is_within_a_busy_hour_and_not_reported() -> None:
    before = _entries("GET /index 200", list(range(-120, -60, 6)))
    now = _entries("GET /index 200", list(range(-60, 0, 3)))
    assert _run(now, before) == {}


def test_a_message_that_began_in_the_previous_window_and_goes_on_is_a_slow_burn() -> None:
    chatter = _entries("cron: hourly job ran", list(range(-120, 0, 10)))
    before = _entries("debug: publishing state", [m / 2 for m in range(-200, -120)])  # from -100 min on
    before += [e for e in chatter if e.at < T0 - timedelta(minutes=60)]
    now = _entries("debug: publishing state", [m / 2 for m in range(-120, 0)])
    now += [e for e in chatter if e.at >= T0 - timedelta(minutes=60)]
    start_ns = int((T0 - timedelta(minutes=120)).timestamp() * 1e9)
    found = _run(now, before, baseline_from_ns=start_ns)
    assert found["debug: publishing state"][0] == "began in the previous window and goes on"
    # a stream that only began logging then (a new shipper, retention) proves nothing about the message
    assert "debug: publishing state" not in _run(
        now, [e for e in before if "debug" in e.line], baseline_from_ns=start_ns
    )
    # the same message present from the start of the baseline is routine
    always = _entries("debug: publishing state", [m / 2 for m in range(-240, -120)])
    assert "debug: publishing state" not in _run(now, always, baseline_from_ns=start_ns)


def test_variants_of_one_new_message_are_one_finding_told_by_its_first_line() -> None:
    now = _entries("zed: eid=89 class=resilver_start pool='tank'", [-14]) + _entries(
        "zed: eid=90 class=config_sync pool='tank'", [-13]
    )
    found = compare(now, [], current_span_s=HOUR_S, baseline_span_s=HOUR_S)
    assert len(found) == 1
    assert "resilver_start" in found[0].template.sample and "config_sync" in found[0].variants[0]


def test_error_and_change_words_only_nudge_the_score() -> None:
    assert prior("kernel: I/O error, dev sda, sector 123") == 1.0
    assert prior("systemd[1]: Reloading nginx.service") == 1.0
    assert prior("keepalived: Entering BACKUP STATE") == PRIOR_PLAIN
    assert prior("level=debug msg=tick") < PRIOR_PLAIN
    now = _entries("keepalived: Entering BACKUP STATE", [-3]) + _entries("worker crashed: error 5", [-3])
    scores = {k: v[1] for k, v in _run(now, []).items()}
    assert scores["worker crashed: error <n>"] > scores["keepalived: Entering BACKUP STATE"] > 0.4
