"""Stalled-connection benchmark: file handles of the API process while N clients hold half a request header.

Run from the repository root::

    .venv/bin/python bench/stalled_connections.py                 # 3,000 connections, about 30 s
    .venv/bin/python bench/stalled_connections.py --connections 500 --timeout 2

It starts, on loopback, a throwaway redis-server and the API twice, one after the other:

1. plain uvicorn with its default HTTP protocol (``uvicorn --factory webhook.app:create_app_from_environment``),
   as ``sre-triage serve`` ran before the request read timeout existed;
2. ``sre-triage serve`` (uvicorn with :class:`webhook.server.GuardedProtocol`), ``API_REQUEST_READ_TIMEOUT_S`` =
   --timeout, ``API_MAX_CONNECTIONS`` = --max-connections.

Against each, --connections clients send half a request header and stop; the script prints the server's open file
handles before, with the clients connected, and --timeout + 3 s later, and how many clients the server closed.
Everything it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.procs import RedisServer, free_port, running  # noqa: E402
from tests.support.stalls import closed_by_server, open_fds, stalled_connections  # noqa: E402

BIN = Path(sys.executable).parent


def measure(
    label: str, command: list[str], port: int, env: dict[str, str], args: argparse.Namespace, tmp: Path
) -> None:
    with running(command, port, env=env, cwd=tmp, log=tmp / f"{label}.log") as server:
        time.sleep(1.0)
        before = open_fds(server.pid)
        with stalled_connections(port, args.connections) as sockets:
            time.sleep(1.0)
            held = open_fds(server.pid)
            time.sleep(args.timeout + 3)
            later = open_fds(server.pid)
            closed = sum(closed_by_server(s) for s in sockets)
        print(
            f"{label:<34} file handles: {before:>5} before, {held:>5} with {args.connections} stalled clients, "
            f"{later:>5} after {args.timeout + 3:.0f} s; clients closed by the server: {closed}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=5.0, help="API_REQUEST_READ_TIMEOUT_S of the guarded run")
    parser.add_argument("--max-connections", type=int, default=5000, help="API_MAX_CONNECTIONS of the guarded run")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="stalled-bench-"))
    redis = RedisServer(tmp)
    redis.start()
    try:
        env = {
            "WEBHOOK_TOKEN": "bench-token",
            "REDIS_URL": redis.url,
            "DATABASE_URL": f"sqlite:///{tmp}/reports.db",
            "CHROMA_DIR": str(tmp / "chroma"),
            "API_REQUEST_READ_TIMEOUT_S": str(args.timeout),
            "API_MAX_CONNECTIONS": str(args.max_connections),
            "LOG_LEVEL": "WARNING",
        }
        port = free_port()
        plain = [
            str(BIN / "uvicorn"),
            "--factory",
            "webhook.app:create_app_from_environment",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        measure("uvicorn, default protocol", plain, port, {**env, "API_INTAKE_ONLY": "true"}, args, tmp)
        port = free_port()
        guarded = [str(BIN / "sre-triage"), "serve", "--intake-only", "--host", "127.0.0.1", "--port", str(port)]
        measure(f"sre-triage serve, {args.timeout:.0f} s read timeout", guarded, port, env, args, tmp)
    finally:
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
