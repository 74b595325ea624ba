"""Intake benchmark: webhook throughput and latency against a bare Redis-PING endpoint, then a notification storm.

Run from the repository root::

    .venv/bin/python bench/intake.py            # about 1 minute
    .venv/bin/python bench/intake.py --seconds 5 --storm 2000

It starts a throwaway redis-server (append-only file on, as in compose.yaml), the API (``sre-triage serve
--intake-only``, one uvicorn process) and the floor (a bare FastAPI app whose only endpoint PINGs Redis, also one
uvicorn process), all on loopback. The load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams,
so the client costs as little CPU as possible on a small machine.

1. Sustained load: CONCURRENCY connections post single-alert notifications (a new alert each, so every request
   enqueues a job) for --seconds, alternating floor and intake twice; requests/s and p50/p99 latency of each.
2. Storm: --storm notifications covering 100 distinct alerts (groups of 4 re-sent whole, as Grafana does),
   shuffled and sent concurrently: triage jobs enqueued (must be 100), non-2xx answers (must be 0), lost alerts
   (alerts without a queued job; must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi import FastAPI, Request  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from tests.support.procs import free_port, running  # noqa: E402

TOKEN = "bench-webhook-token"
CONCURRENCY = 32
STORM_ALERTS = 100
GROUP_SIZE = 4


# ---- the floor: the least a webhook that touches Redis can do ----


def floor_app() -> Any:
    """Bare FastAPI app: one POST endpoint that PINGs Redis and answers 202 (uvicorn --factory)."""
    redis = Redis.from_url(os.environ["BENCH_REDIS_URL"])
    app = FastAPI()

    @app.post("/webhook/grafana")
    async def ping(request: Request) -> JSONResponse:
        await request.body()
        await redis.ping()
        return JSONResponse({"ok": True}, status_code=202)

    return app


# ---- a minimal keep-alive HTTP/1.1 client ----


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    name: str
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    server_cpu_s: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    def pct_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        p50 = statistics.median(self.latencies_s) * 1000
        return (
            f"{self.name:<8} {len(self.latencies_s):>7} req  {self.rps:>8.0f} req/s  "
            f"p50 {p50:6.2f} ms  p99 {self.pct_ms(0.99):6.2f} ms  "
            f"server CPU {self.cpu_us_per_request:5.0f} µs/req  statuses {dict(sorted(self.statuses.items()))}"
        )

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / len(self.latencies_s) * 1e6 if self.latencies_s else 0.0


def notification(alerts: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "receiver": "bench",
            "status": "firing",
            "orgId": 1,
            "alerts": alerts,
            "groupLabels": {},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://grafana.local/",
            "version": "1",
            "groupKey": "{}:{}",
            "truncatedAlerts": 0,
        }
    ).encode()


def alert(n: int) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": f"BenchAlert{n % 50}", "instance": f"host{n}:9100", "severity": "warning"},
        "annotations": {"summary": f"bench alert {n}", "runbook_url": "https://runbooks.local/bench"},
        "startsAt": "2026-11-26T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://grafana.local/alerting/grafana/bench/view",
        "fingerprint": f"{n:016x}",
        "values": {"A": 91.5, "C": 1},
    }


async def sustained(name: str, port: int, pid: int, seconds: float, counter: Iterator[int]) -> Run:
    run = Run(name)
    cpu_before = cpu_s(pid)
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        conn = Connection(port)
        try:
            while time.perf_counter() < deadline:
                body = notification([alert(next(counter))])
                started = time.perf_counter()
                status = await conn.post("/webhook/grafana", body)
                run.latencies_s.append(time.perf_counter() - started)
                run.statuses[status] = run.statuses.get(status, 0) + 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    run.elapsed_s = time.perf_counter() - started
    run.server_cpu_s = cpu_s(pid) - cpu_before
    return run


async def storm(port: int, total: int, redis_url: str) -> dict[str, Any]:
    from triage.constants import QUEUE_NAME

    base = 10_000_000
    groups = [[alert(base + g * GROUP_SIZE + i) for i in range(GROUP_SIZE)] for g in range(STORM_ALERTS // GROUP_SIZE)]
    bodies = [notification(groups[k % len(groups)]) for k in range(total)]
    random.Random(7).shuffle(bodies)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    statuses: dict[int, int] = {}

    async def client() -> None:
        conn = Connection(port)
        try:
            while not queue.empty():
                body = queue.get_nowait()
                status = await conn.post("/webhook/grafana", body)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            await conn.close()

    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY * 2)))
    elapsed = time.perf_counter() - started
    queued = {m.decode() for m in await redis.zrange(QUEUE_NAME, 0, -1)}
    await redis.aclose()
    expected = {_job_id(a) for group in groups for a in group}
    return {
        "notifications": total,
        "seconds": elapsed,
        "triage_jobs_enqueued": len(queued),
        "non_2xx": sum(n for s, n in statuses.items() if not 200 <= s < 300),
        "lost": len(expected - queued),
        "unexpected_jobs": len(queued - expected),
        "statuses": statuses,
    }


def _job_id(raw: dict[str, Any]) -> str:
    from reports.payloads import parse_alerts
    from triage.worker.queue import job_for

    parsed = parse_alerts("grafana", json.loads(notification([raw])))[0]
    return job_for(parsed)[1]


@contextmanager
def servers(workdir: Path, log_level: str) -> Iterator[tuple[str, tuple[int, int], tuple[int, int]]]:
    redis_port, api_port, floor_port = free_port(), free_port(), free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_cmd = [
        shutil.which("redis-server") or "redis-server",
        "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(workdir),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
    ]  # fmt: skip
    bin_dir = Path(sys.executable).parent
    env = {
        "WEBHOOK_TOKEN": TOKEN,
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{workdir}/reports.db",
        "CHROMA_DIR": str(workdir / "chroma"),
        "LOG_LEVEL": log_level,
        "BENCH_REDIS_URL": redis_url,
        "PYTHONPATH": str(ROOT),
    }
    api_cmd = [str(bin_dir / "sre-triage"), "serve", "--intake-only", "--host", "127.0.0.1", "--port", str(api_port)]
    floor_cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "bench.intake:floor_app",
        "--host", "127.0.0.1", "--port", str(floor_port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with (
        running(redis_cmd, redis_port, log=workdir / "redis.log"),
        running(api_cmd, api_port, env=env, cwd=workdir, log=workdir / "api.log") as api,
        running(floor_cmd, floor_port, env=env, cwd=ROOT, log=workdir / "floor.log") as floor,
    ):
        yield redis_url, (api_port, api.pid), (floor_port, floor.pid)


async def main_async(args: argparse.Namespace, redis_url: str, api: tuple[int, int], floor: tuple[int, int]) -> int:
    counter = iter(range(sys.maxsize))
    print(f"warm-up {args.warmup:g}s each …", flush=True)
    await sustained("warmup", *floor, args.warmup, counter)
    await sustained("warmup", *api, args.warmup, counter)
    runs: dict[str, list[Run]] = {"floor": [], "intake": []}
    for _ in range(2):
        for name, (port, pid) in (("floor", floor), ("intake", api)):
            run = await sustained(name, port, pid, args.seconds, counter)
            runs[name].append(run)
            print(run.line(), flush=True)
    combined = {name: _merge(name, parts) for name, parts in runs.items()}
    ratio = combined["intake"].rps / combined["floor"].rps
    print("\nsustained, concurrency", CONCURRENCY, "(both rounds combined)")
    for run in combined.values():
        print("  " + run.line())
    p99 = combined["intake"].pct_ms(0.99)
    cpu_ratio = combined["floor"].cpu_us_per_request / combined["intake"].cpu_us_per_request
    print(f"  intake/floor throughput: {ratio:.0%} (goal ≥ 50%)   intake p99: {p99:.1f} ms (goal < 50 ms)")
    print(
        f"  floor/intake server CPU per request: {cpu_ratio:.0%} (the throughput ratio when the API process is the bottleneck)"
    )

    result = await storm(api[0], args.storm, redis_url)
    print(f"\nstorm: {result['notifications']} notifications, {STORM_ALERTS} distinct alerts, {result['seconds']:.1f}s")
    print(
        f"  triage jobs enqueued {result['triage_jobs_enqueued']} (must be {STORM_ALERTS}), "
        f"non-2xx {result['non_2xx']} (must be 0), lost {result['lost']} (must be 0), "
        f"statuses {result['statuses']}"
    )
    ok = (
        ratio >= 0.5
        and p99 < 50
        and result["triage_jobs_enqueued"] == STORM_ALERTS
        and result["non_2xx"] == 0
        and result["lost"] == 0
    )
    print("\nall goals met" if ok else "\nSOME GOALS MISSED")
    return 0 if ok else 1


def _merge(name: str, parts: list[Run]) -> Run:
    merged = Run(name)
    for part in parts:
        merged.latencies_s += part.latencies_s
        merged.elapsed_s += part.elapsed_s
        merged.server_cpu_s += part.server_cpu_s
        for status, count in part.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + count
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each sustained round")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up per server before measuring")
    parser.add_argument("--storm", type=int, default=10_000, help="notifications in the storm")
    parser.add_argument("--log-level", default="WARNING", help="API LOG_LEVEL during the run")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="sre-triage-bench-") as tmp,
        servers(Path(tmp), args.log_level) as (redis_url, api, floor),
    ):
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"machine: {os.cpu_count()} CPUs, load average {load}; redis, API, floor: one process each")
        return asyncio.run(main_async(args, redis_url, api, floor))


if __name__ == "__main__":
    sys.exit(main())
