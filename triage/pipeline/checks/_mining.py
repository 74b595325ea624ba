"""Log change detection without vocabularies: what the logs started saying that they did not say before.

Every line of a window and of the baseline window before it is reduced to a *template* (variable parts masked, see
:func:`triage.pipeline.checks._log_selectors.template`) and the templates are clustered with Drain (the ``drain3`` log-template
miner), so lines that differ in one word — ``pool tank state ONLINE`` / ``pool tank state DEGRADED`` — fall into one
cluster. A template is then:

- **new** when its cluster never appeared in the baseline (a message the host did not log before);
- a **new variant** when the cluster did appear but with few distinct variants and never this one (a state that
  changed: the cluster is a sentence whose parameter is a state, not an id);
- **surged** when it appeared before but now far more often than the baseline's rate predicts.

A cluster whose baseline already has many variants has an id-like parameter (user names, paths): its new variants are
judged by the cluster's rate instead. Log level and wording never decide what is looked at; error and change words
only nudge the score (:data:`PRIOR_PLAIN`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from tools.loki import LogEntry
from triage.pipeline.checks._log_selectors import change_kind, clip, template
from triage.pipeline.ranking import saturate

# a cluster with at least this many variants in the baseline has an id-like parameter: a new variant is routine
ROUTINE_VARIANTS = 4
DRAIN_SIMILARITY = 0.5
DRAIN_DEPTH = 4
# a line without error or change words keeps this share of its score: wording nudges, it does not decide
PRIOR_PLAIN = 0.8
PRIOR_DEBUG = 0.5
ERROR_WORDS = re.compile(
    r"(?i)(\berror\b|\berr\b|level=(error|err|fatal|crit)|\bfatal\b|\bpanic\b|exception|traceback|critical"
    r"|\bfailed\b|failure|refused|timed? ?out|segfault|out of memory|\bI/O error\b|degraded|faulted|unavailable)"
)
DEBUG_WORDS = re.compile(r"(?i)(level=debug|\bdebug\b|\btrace\b)")
SURGE_HALF = 4.0
SURGE_MIN_RATIO = 3.0
SURGE_MIN_Z = 3.0
# a message absent from the first quarter of the baseline that then logs on, at volume, began a slow burn
BEGAN_QUIET_SHARE = 0.25
BEGAN_MIN_COUNT = 10
BEGAN_COUNT_HALF = 30.0
NEW_COUNT_HALF = 3.0
NEW_VARIANT = "new variant of a known message"


@dataclass
class Template:
    """One template's lines: how many in the window, in the baseline, and the first and last of the window."""

    key: str
    cluster: int
    count: int = 0
    before: int = 0
    first: LogEntry | None = None
    last: LogEntry | None = None
    sample: str = ""
    streams: set[str] = field(default_factory=set)
    # its earliest line in the baseline: a message that began there and goes on is a slow burn, not routine
    first_before: LogEntry | None = None


@dataclass(frozen=True)
class Change:
    """A template the window logs that the baseline did not (or far less): ``novelty`` 0..1 before the prior."""

    template: Template
    status: str
    novelty: float
    prior: float
    cluster_template: str
    # other lines of the same new message, when several variants of it appeared
    variants: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        return min(1.0, self.novelty * self.prior)


def _collect(miner: TemplateMiner, current: list[LogEntry], baseline: list[LogEntry]) -> dict[str, Template]:
    """Every template of both windows, clustered, with its counts and its first and last lines."""
    templates: dict[str, Template] = {}
    for before, entries in ((True, _unique(baseline)), (False, _unique(current))):
        for entry in entries:
            key = template(entry.line)
            if not key:
                continue
            item = templates.get(key)
            if item is None:
                cluster = int(miner.add_log_message(key)["cluster_id"])
                item = templates[key] = Template(key, cluster)
            if before:
                item.before += 1
                if item.first_before is None:
                    item.first_before = entry
                continue
            item.count += 1
            if item.first is None:
                item.first = entry
                item.sample = clip(entry.line)
            item.last = entry
            if len(item.streams) < 5:
                item.streams.add(",".join(f"{k}={v}" for k, v in sorted(entry.labels.items()))[:200])
    return templates


def _miner() -> TemplateMiner:
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.drain_sim_th = DRAIN_SIMILARITY
    config.drain_depth = DRAIN_DEPTH
    # lines arrive already masked (<n>, <ip>, <str> …): Drain only has to find the words that vary
    config.masking_instructions = []
    return TemplateMiner(config=config)


def prior(line: str) -> float:
    """How much a line's wording supports it being the story: error and change words count fully."""
    if DEBUG_WORDS.search(line) and not ERROR_WORDS.search(line):
        return PRIOR_DEBUG
    if ERROR_WORDS.search(line) or change_kind(line) is not None:
        return 1.0
    return PRIOR_PLAIN


def _unique(entries: list[LogEntry]) -> list[LogEntry]:
    seen: set[tuple[int, str, tuple[tuple[str, str], ...]]] = set()
    out: list[LogEntry] = []
    for entry in sorted(entries, key=lambda e: e.ts_ns):
        key = (entry.ts_ns, entry.line, tuple(sorted(entry.labels.items())))
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def compare(
    current: list[LogEntry],
    baseline: list[LogEntry],
    *,
    current_span_s: float,
    baseline_span_s: float,
    baseline_from_ns: int | None = None,
) -> list[Change]:
    """Templates of ``current`` that are new, new variants or surged against ``baseline``, or that began during the
    baseline (after ``baseline_from_ns``) and go on at volume, best first.

    The spans are the seconds each list covers (shorter than the windows when a line limit cut them), so rates
    compare fairly.
    """
    miner = _miner()
    templates = _collect(miner, current, baseline)
    # a message is quiet before it began only while the stream logged something else: measure from its first line
    earliest = min((e.ts_ns for e in baseline), default=None)
    logging_from_ns = None if baseline_from_ns is None or earliest is None else max(baseline_from_ns, earliest)
    clusters_before: Counter[int] = Counter()
    variants_before: Counter[int] = Counter()
    cluster_now: Counter[int] = Counter()
    for item in templates.values():
        clusters_before[item.cluster] += item.before
        variants_before[item.cluster] += 1 if item.before else 0
        cluster_now[item.cluster] += item.count
    ratio = current_span_s / baseline_span_s if baseline_span_s > 0 else 1.0
    changes: list[Change] = []
    for item in templates.values():
        if not item.count or item.first is None:
            continue
        found = _judge(item, clusters_before[item.cluster], variants_before[item.cluster], cluster_now, ratio)
        if found is None:
            found = _began(item, logging_from_ns, baseline_span_s)
        if found is None:
            continue
        status, novelty = found
        cluster = miner.drain.id_to_cluster.get(item.cluster)
        shape = cluster.get_template() if cluster is not None else item.key
        changes.append(Change(item, status, novelty, prior(item.sample), shape))
    changes = _merge_new_clusters(changes)
    changes.sort(key=lambda c: (c.score, c.template.count), reverse=True)
    return changes


def _merge_new_clusters(changes: list[Change]) -> list[Change]:
    """One finding per cluster the baseline never had, told by its earliest line: its variants are one new message
    (a daemon's ``class=resilver_start`` and ``class=config_sync`` events), not several."""
    by_cluster: dict[int, list[Change]] = {}
    kept: list[Change] = []
    for change in changes:
        if change.status == "new pattern":
            by_cluster.setdefault(change.template.cluster, []).append(change)
        else:
            kept.append(change)
    for group in by_cluster.values():
        group.sort(key=lambda c: c.template.first.ts_ns if c.template.first else 0)
        first = group[0]
        if len(group) == 1:
            kept.append(first)
            continue
        total = sum(c.template.count for c in group)
        others = tuple(c.template.sample for c in group[1:])
        novelty = new_pattern(total)[1]
        kept.append(replace(first, novelty=novelty, prior=max(c.prior for c in group), variants=others))
    return kept


def _began(item: Template, logging_from_ns: int | None, baseline_span_s: float) -> tuple[str, float] | None:
    first = item.first_before
    return began(None if first is None else first.ts_ns, item.count, logging_from_ns, baseline_span_s)


def began(
    first_before_ns: int | None, count: int, logging_from_ns: int | None, baseline_span_s: float
) -> tuple[str, float] | None:
    """A message that did not exist while the stream was already logging others, appeared during the baseline (its
    first line at ``first_before_ns``) and still logs at volume (``count`` lines in the window): what a slow burn (a
    debug level left on, a retry loop) looks like, though both windows contain it."""
    if first_before_ns is None or logging_from_ns is None or count < BEGAN_MIN_COUNT:
        return None
    quiet_s = (first_before_ns - logging_from_ns) / 1e9
    if quiet_s < BEGAN_QUIET_SHARE * baseline_span_s:
        return None
    return "began in the previous window and goes on", 0.45 + 0.35 * saturate(count, BEGAN_COUNT_HALF)


def _surge(now: int, before: int, ratio: float) -> float:
    """How far ``now`` lines exceed what the baseline's rate predicts, in Poisson standard deviations; 0 unless the
    rate at least :data:`SURGE_MIN_RATIO`-folded (busier hours double a line's rate routinely)."""
    expected = before * ratio
    if now < SURGE_MIN_RATIO * expected:
        return 0.0
    return max(0.0, (now - expected) / math.sqrt(expected + 1.0))


def _judge(
    item: Template, cluster_before: int, variants: int, cluster_now: Counter[int], ratio: float
) -> tuple[str, float] | None:
    return judge(item.count, item.before, cluster_now[item.cluster], cluster_before, variants, ratio)


def new_pattern(count: int) -> tuple[str, float]:
    """The status and novelty of a message never logged before, said ``count`` times."""
    return "new pattern", 0.55 + 0.45 * saturate(count, NEW_COUNT_HALF)


def new_variant(count: int) -> tuple[str, float]:
    """The status and novelty of a new variant of a known message, said ``count`` times."""
    return NEW_VARIANT, 0.5 + 0.4 * saturate(count, NEW_COUNT_HALF)


def judge(
    count: int, before: int, cluster_now: int, cluster_before: int, variants: int, ratio: float
) -> tuple[str, float] | None:
    """Whether a template with ``count`` lines in the window and ``before`` in the baseline, of a cluster with
    ``cluster_now``/``cluster_before`` lines and ``variants`` templates in the baseline, is a change: its status and
    novelty, or None. ``ratio`` is the window's span over the baseline's."""
    if before == 0 and cluster_before == 0:
        return new_pattern(count)
    if before == 0 and variants < ROUTINE_VARIANTS:
        return new_variant(count)
    if before == 0:
        growth = _surge(cluster_now, cluster_before, ratio)
        if growth < SURGE_MIN_Z:
            return None
        return f"its kind logged {cluster_before} times in the previous window", 0.7 * saturate(growth, SURGE_HALF)
    growth = _surge(count, before, ratio)
    if growth < SURGE_MIN_Z:
        return None
    return f"{before} in the previous window", 0.8 * saturate(growth, SURGE_HALF)
