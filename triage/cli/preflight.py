"""Checks a long-running command makes before it starts serving, so a dependency that is down at start-up is one
clear line on stderr (and exit status 2, see :mod:`triage.cli.main`) instead of a traceback from inside a framework."""

from __future__ import annotations

import logging

from reports.store import StoreError, open_store
from triage.settings import Settings, StartupError


async def require_store(settings: Settings) -> None:
    """Open and close the report store once; raise :class:`StartupError` with one sentence when it cannot be."""
    # the connection pool logs every failed attempt; the one sentence below says it all
    pool_log = logging.getLogger("psycopg.pool")
    level = pool_log.level
    pool_log.setLevel(logging.ERROR)
    try:
        store = open_store(settings.storage.database_url)
        await store.init()
    except StoreError as exc:
        # StoreError messages name the store without its credentials
        raise StartupError(f"{exc} (check DATABASE_URL and that the database is running)") from None
    finally:
        pool_log.setLevel(level)
    await store.close()
