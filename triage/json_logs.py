"""JSON logs for the API and the worker: one object per line, keyed by job id and alert fingerprint.

Secrets are never written.

Fields given with ``extra={...}`` become top-level keys. Every configured secret value (tokens, passwords, keys,
credentials inside URLs) is replaced by ``[redacted]`` in the message, the extra fields and tracebacks, so a
library that logs a URL or a header cannot leak one.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from tools.credentials import secret_values
from triage.settings import Settings

REDACTED = "[redacted]"
# LogRecord's own attributes: everything else on a record came from ``extra=``.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = list(secrets or [])

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure_logging(settings: Settings, *, stream: Any = None) -> JsonFormatter:
    """Route the root logger (and uvicorn's, arq's) through one JSON handler at LOG_LEVEL."""
    formatter = JsonFormatter(secret_values(settings))
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.api.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "arq.worker", "arq.jobs"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return formatter
