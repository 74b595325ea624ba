"""A real Prometheus loaded with synthetic series, for tests and benchmarks.

The series are written as OpenMetrics text, turned into TSDB blocks with ``promtool tsdb create-blocks-from
openmetrics`` and served by ``/usr/bin/prometheus`` on a free loopback port. Rule files (alerting and recording)
are optional and evaluated every ``evaluation_interval_s``. Typical use::

    now = datetime.now(UTC)
    cpu = SyntheticSeries.from_fn("node_cpu_busy", {"instance": "pve1:9100"}, now - timedelta(hours=1), now,
                                  fn=lambda t: 0.2 if t < 3000 else 0.95)
    with PrometheusWorld(tmp_path, series=[cpu], rules=[{"name": "g", "rules": [...]}]) as world:
        ... PrometheusClient(world.url) ...

Samples may be recent (minutes before now): the blocks overlap the head block's time range, which Prometheus
2.39+ merges at query time. ``PrometheusWorld.start`` verifies that the newest sample of every series is queryable
before it returns, so a world that silently dropped data fails loudly instead of producing an empty test.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from tests.support.procs import free_port, require_binary, running

Timestamp = datetime | float


def _unix(at: Timestamp) -> float:
    return at.timestamp() if isinstance(at, datetime) else float(at)


def _om_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _om_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass
class SyntheticSeries:
    """One series: metric ``name``, ``labels`` and ``(time, value)`` points (datetime or Unix seconds)."""

    name: str
    labels: dict[str, str]
    points: list[tuple[Timestamp, float]] = field(default_factory=list)

    @classmethod
    def from_fn(
        cls,
        name: str,
        labels: Mapping[str, str],
        start: datetime,
        end: datetime,
        *,
        fn: Callable[[float], float],
        step_s: float = 15.0,
    ) -> SyntheticSeries:
        """Points every ``step_s`` from ``start`` to ``end``; ``fn`` gets the seconds since ``start``."""
        count = int((end - start).total_seconds() // step_s) + 1
        points: list[tuple[Timestamp, float]] = []
        for i in range(count):
            offset = i * step_s
            points.append((start + timedelta(seconds=offset), fn(offset)))
        return cls(name, dict(labels), points)

    @classmethod
    def constant(
        cls, name: str, labels: Mapping[str, str], value: float, start: datetime, end: datetime, step_s: float = 15.0
    ) -> SyntheticSeries:
        """A flat series at ``value``."""
        return cls.from_fn(name, labels, start, end, fn=lambda _t: value, step_s=step_s)

    def openmetrics_lines(self) -> list[str]:
        """The samples as OpenMetrics lines, oldest first (the order promtool requires per series)."""
        label_text = ",".join(f'{k}="{_om_escape(v)}"' for k, v in sorted(self.labels.items()))
        head = f"{self.name}{{{label_text}}}" if label_text else self.name
        ordered = sorted(self.points, key=lambda p: _unix(p[0]))
        return [f"{head} {_om_value(v)} {_unix(t):.3f}" for t, v in ordered]


def openmetrics(series: Sequence[SyntheticSeries]) -> str:
    """An OpenMetrics exposition of ``series``: one family per metric name (contiguous, as the format requires)."""
    families: dict[str, list[SyntheticSeries]] = {}
    for s in series:
        families.setdefault(s.name, []).append(s)
    lines: list[str] = []
    for name, members in families.items():
        # counters must be declared by their base name; everything else is a gauge for our purposes
        if name.endswith("_total"):
            lines.append(f"# TYPE {name.removesuffix('_total')} counter")
        else:
            lines.append(f"# TYPE {name} gauge")
        for member in members:
            lines.extend(member.openmetrics_lines())
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


class PrometheusWorld:
    """A throwaway Prometheus with backfilled series and optional rules; a context manager.

    ``rules`` is a list of rule groups (dicts as in a rule file's ``groups:``) or a rule file's YAML text.
    ``lookback_delta`` (e.g. ``"5m"``) sets ``--query.lookback-delta``; ``scrape_self`` makes Prometheus scrape its
    own /metrics, which fills the metadata API.
    """

    def __init__(
        self,
        workdir: Path,
        series: Sequence[SyntheticSeries] = (),
        *,
        rules: Sequence[Mapping[str, Any]] | str | None = None,
        evaluation_interval_s: int = 1,
        lookback_delta: str | None = None,
        scrape_self: bool = False,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.workdir = workdir
        self.series = list(series)
        self.rules = rules
        self.evaluation_interval_s = evaluation_interval_s
        self.lookback_delta = lookback_delta
        self.scrape_self = scrape_self
        self.start_timeout_s = start_timeout_s
        self.port = free_port()
        self._ctx: Any = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        """The TSDB directory holding the backfilled blocks."""
        return self.workdir / "data"

    def _backfill(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.series:
            return
        source = self.workdir / "series.om"
        source.write_text(openmetrics(self.series), encoding="utf-8")
        result = subprocess.run(
            [require_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"promtool backfill failed: {result.stderr[-2000:]}")

    def _config(self) -> Path:
        config: dict[str, Any] = {
            "global": {"evaluation_interval": f"{self.evaluation_interval_s}s", "scrape_interval": "1s"},
            "scrape_configs": [],
        }
        if self.rules is not None:
            rules_file = self.workdir / "rules.yml"
            text = self.rules if isinstance(self.rules, str) else yaml.safe_dump({"groups": list(self.rules)})
            rules_file.write_text(text, encoding="utf-8")
            config["rule_files"] = [str(rules_file)]
        if self.scrape_self:
            config["scrape_configs"].append(
                {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]}
            )
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def command(self) -> list[str]:
        """The prometheus command line this world runs."""
        cmd = [
            require_binary("prometheus"),
            f"--config.file={self._config()}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            # scenarios may be dated years back; retention must never delete a backfilled block
            "--storage.tsdb.retention.time=36500d",
        ]
        if self.lookback_delta:
            cmd.append(f"--query.lookback-delta={self.lookback_delta}")
        return cmd

    def start(self) -> None:
        """Backfill, start Prometheus, wait until it is ready and every series' newest sample is queryable."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._backfill()
        self._ctx = running(
            self.command(), self.port, log=self.workdir / "prometheus.log", timeout_s=self.start_timeout_s
        )
        self._ctx.__enter__()
        try:
            self._wait_ready()
            self._verify_backfill()
            if self.rules is not None:
                self.wait_for_rule_evaluation()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            ctx.__exit__(None, None, None)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def api(self, path: str, **params: str) -> Any:
        """GET an API path and return its ``data`` (for test set-up and checks, not for the code under test)."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("prometheus did not become ready")
            time.sleep(0.1)

    def _verify_backfill(self) -> None:
        for s in self.series:
            if not s.points:
                continue
            newest = max(_unix(t) for t, _ in s.points)
            matchers = ",".join(f'{k}="{_om_escape(v)}"' for k, v in s.labels.items())
            data = self.api("/api/v1/query", query=f"{s.name}{{{matchers}}}", time=f"{newest:.3f}")
            if not data["result"]:
                raise RuntimeError(f"backfilled series {s.name}{s.labels} is not queryable at {newest}")

    def wait_for_rule_evaluation(self, timeout_s: float = 15.0) -> None:
        """Block until every rule of every group has been evaluated at least once."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            rules = [r for g in self.api("/api/v1/rules")["groups"] for r in g["rules"]]
            # Go's zero time (year 1) marks a rule that has not run yet
            if rules and all(not str(r.get("lastEvaluation", "0001")).startswith("0001") for r in rules):
                return
            time.sleep(0.2)
        raise TimeoutError("rules were not evaluated in time")
