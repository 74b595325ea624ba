"""``sre-triage serve``: run the HTTP API (webhooks, health, metrics, and the report and /ask routes)."""

from __future__ import annotations

import argparse
import asyncio
import os

from triage.cli.preflight import require_store
from triage.json_logs import configure_logging
from triage.settings import load_settings

# uvicorn imports the app by name: the CLI (triage) stays below the HTTP layer (webhook) it starts
APP_FACTORY = "webhook.app:create_app_from_environment"
# uvicorn's HTTP protocol with a request read timeout and a connection cap (webhook.server)
HTTP_PROTOCOL = "webhook.server:GuardedProtocol"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: API_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (default: API_PORT)")
    parser.add_argument(
        "--intake-only",
        action="store_true",
        help="serve only the webhooks, health and metrics (sets API_INTAKE_ONLY=true)",
    )


def run(args: argparse.Namespace) -> int:
    if args.intake_only:
        os.environ["API_INTAKE_ONLY"] = "true"
    # validated here so a bad configuration is one clear message, before uvicorn starts; the API refuses to start
    # without webhook authentication unless explicitly allowed
    settings = load_settings(require_webhook_auth=True)
    configure_logging(settings)
    asyncio.run(require_store(settings))

    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        http=HTTP_PROTOCOL,
        host=args.host or settings.api.api_host,
        port=args.port or settings.api.api_port,
        log_config=None,  # keep the JSON handler configured above
        access_log=False,  # webhook.logging writes the access log, without query strings
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0
