"""The FastAPI application factory.

:func:`create_app` builds the app from settings; the lifespan opens the long-lived resources and closes them at
shutdown:

* ``app.state.settings`` — the :class:`~triage.settings.Settings` it was built with;
* ``app.state.arq`` — an :class:`arq.connections.ArqRedis` pool (connects lazily: the API starts while Redis is
  down and answers 503 until it is back);
* ``app.state.store`` — the initialised report store;
* ``app.state.metrics``, ``app.state.webhook_auth`` — this app's metrics registry and webhook authenticator.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from reports.store import open_store
from triage.settings import Settings, StartupError, load_settings
from triage.worker.queue import UniqueEnqueuer, queue_client
from webhook.auth import WebhookAuth
from webhook.errors import install_error_handlers
from webhook.logging import AccessLogMiddleware
from webhook.metrics import IntakeMetrics

log = logging.getLogger("webhook.app")

Routers = Callable[[], dict[str, APIRouter]]


# The API's routers by module, included in this order; a router may bring its own lifespan (FastAPI merges it).
# Imported when an app is built with them, so an intake-only API never loads the /ask and report stacks.
def intake_routers() -> dict[str, APIRouter]:
    """Webhook intake, health and metrics."""
    from webhook import health, intake

    return {intake.__name__: intake.router, health.__name__: health.router}


def all_routers() -> dict[str, APIRouter]:
    """Intake, then login, report pages, digest and /ask. Adding a feature's routes is one line here."""
    from webhook import ask_routes, digest_routes, login_routes, reports_routes

    return {
        **intake_routers(),
        login_routes.__name__: login_routes.router,
        reports_routes.__name__: reports_routes.router,
        digest_routes.__name__: digest_routes.router,
        ask_routes.__name__: ask_routes.router,
    }


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    store = open_store(settings.storage.database_url)
    await store.init()
    arq = queue_client(settings.redis.redis_url)
    app.state.store = store
    app.state.arq = arq
    app.state.enqueuer = UniqueEnqueuer(arq)
    log.info("api started", extra={"routers": app.state.routers})
    try:
        yield
    finally:
        await arq.aclose(close_connection_pool=True)
        await store.close()
        log.info("api stopped")


def create_app(settings: Settings, *, routers: Routers = all_routers) -> FastAPI:
    """The API for ``settings`` (validated already: see :func:`triage.settings.load_settings`).

    ``routers`` picks the route modules: :func:`intake_routers` gives an intake-only API (webhooks, health,
    metrics), for a dedicated intake replica or a benchmark.
    """
    if not (settings.webhook.auth_configured or settings.webhook.allow_unauthenticated):
        raise StartupError(
            "no webhook authentication is configured: set WEBHOOK_TOKEN, WEBHOOK_BASIC_USER/WEBHOOK_BASIC_PASSWORD "
            "or WEBHOOK_HMAC_SECRET, or set WEBHOOK_ALLOW_UNAUTHENTICATED=true to accept unauthenticated alerts"
        )
    # the interactive docs page loads its scripts from a CDN: served only when asked for (API_DOCS)
    docs = settings.api.api_docs
    app = FastAPI(
        title="sre-triage",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = IntakeMetrics(settings.llm.llm_hourly_token_budget)
    app.state.webhook_auth = WebhookAuth(settings.webhook)
    install_error_handlers(app)
    app.add_middleware(AccessLogMiddleware)
    app.state.routers = []
    # name -> async callable raising when that component is not ready; routers add theirs (see webhook.health)
    app.state.ready_checks = {}
    for name, router in routers().items():
        app.include_router(router)
        app.state.routers.append(name)
    return app


def create_app_from_environment() -> FastAPI:
    """The app ``sre-triage serve`` runs (uvicorn factory): settings from the environment, webhook auth required."""
    settings = load_settings(require_webhook_auth=True)
    app = create_app(settings, routers=intake_routers if settings.api.api_intake_only else all_routers)
    # What exists now (modules, settings, the app) lives as long as the process: move it out of the collector's
    # reach, so a full collection under load scans only request garbage (pauses of ~100 ms otherwise).
    gc.collect()
    gc.freeze()
    return app
