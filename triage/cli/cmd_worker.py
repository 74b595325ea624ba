"""``sre-triage worker``: run the arq triage worker until SIGTERM (or, with ``--burst``, until the queue is empty)."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import logging
import signal

from triage.cli.preflight import require_store
from triage.json_logs import configure_logging
from triage.settings import load_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--burst", action="store_true", help="run the queued jobs, then exit")
    parser.add_argument(
        "--check", action="store_true", help="exit 0 when a worker reported in the last minute, else 1 (healthcheck)"
    )


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings)

    from triage.worker.arq_settings import build_worker, check_worker_health

    if args.check:
        return asyncio.run(check_worker_health(settings))
    asyncio.run(require_store(settings))
    # a fatal signal (SIGBUS from a memory-mapped file on a full disk, SIGSEGV) leaves a traceback on stderr
    # instead of a bare exit status
    faulthandler.enable()
    worker = build_worker(settings, burst=args.burst)
    # the process lives as long as what is loaded now: keep it out of full collections
    gc.collect()
    gc.freeze()
    # arq's run() installs SIGINT/SIGTERM handlers and finishes running jobs before it returns
    try:
        worker.run()
    except Exception as exc:
        logging.getLogger("triage.worker.arq_settings").exception(
            "worker stopped on an error", extra={"error_type": type(exc).__name__}
        )
        return 1
    finally:
        # arq's handlers only act while its event loop runs: whatever still runs after it (a library's thread)
        # must not keep the process deaf to SIGTERM
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return 0
