"""What Proxmox VE and Proxmox Backup Server share: the ``/api2/json`` base path, the ``{"data": …}`` envelope,
API-token headers, and how their error answers map onto the ``tools.errors`` tree.

Both products answer a rejected parameter with HTTP 400 (PVE: ``{"data": null, "errors": {"param": "why"}}``,
PBS: the reason as plain text) and some PVE handlers answer HTTP 200 with ``{"data": null, "errors": …}``; both
become :class:`SourceQueryError`. PVE reports a missing guest as HTTP 500 "… does not exist", which becomes
:class:`SourceNotFound` so callers can tell "no such guest" from "the node is broken".
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar, Unpack
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from tools.errors import (
    SourceError,
    SourceMalformedResponse,
    SourceNotFound,
    SourceQueryError,
    SourceRequestError,
    SourceServerError,
)
from tools.http import ClientOptions, SourceClient

API_PATH = "/api2/json"
ERROR_TEXT_CHARS = 300
PROXY_ERROR = 596

M = TypeVar("M", bound=BaseModel)


MAX_TASK_LOG_LINES = 5000
TASK_LOG_LINE_CHARS = 500


def api_base(base_url: str) -> str:
    """``https://pve:8006`` or ``https://pve:8006/api2/json`` → the URL with exactly one ``/api2/json``."""
    base = base_url.rstrip("/")
    return base if base.endswith(API_PATH) else base + API_PATH


# Segments a URL normaliser removes or collapses (RFC 3986 dot-segments, empty ones): never sent, even inside a value
# with a slash, because servers that decode %2F before cleaning the path (Go's) would still climb.
_DOT_SEGMENTS = ("", ".", "..")
_SLASHES = re.compile(r"[/\\]")


def segment(value: str | int) -> str:
    """Quote one URL path segment so a value (node name, UID, store) can never add a path component or a query.

    Every character but unreserved ASCII is percent-encoded (``/``, ``?``, ``#``, ``%`` included). A value with an
    empty, ``.`` or ``..`` part (between slashes, or the whole value) is refused with :class:`SourceRequestError`:
    clients and servers collapse those into the parent path whether they are encoded or not.
    """
    text = str(value)
    if any(part in _DOT_SEGMENTS for part in _SLASHES.split(text)):
        raise SourceRequestError(f"{text[:80]!r} cannot be a URL path segment", source="http")
    return quote(text, safe="")


def parse_model(model: type[M], data: Any, *, source: str, url: str) -> M:
    """Validate one object of an answer; a shape the API does not document raises SourceMalformedResponse."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SourceMalformedResponse(
            f"unexpected {model.__name__} shape: {exc.error_count()} validation error(s)", source=source, url=url
        ) from exc


def parse_list(model: type[M], data: Any, *, source: str, url: str) -> list[M]:
    """Validate a list answer item by item (``null`` is an empty list, as PVE sends for "nothing")."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise SourceMalformedResponse(f"expected a list, got {type(data).__name__}", source=source, url=url)
    return [parse_model(model, item, source=source, url=url) for item in data]


def _describe_errors(errors: Any) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{key}: {str(value).strip()}" for key, value in errors.items())
    return str(errors).strip()


class ProxmoxApiClient(SourceClient):
    """Base of the PVE and PBS clients: envelope unwrapping and error translation.

    ``auth_header`` is the full ``Authorization`` value; ``secret`` is the bare token secret, redacted from every
    error message even where an upstream echoes it without the header prefix.
    """

    source = "proxmox"

    def __init__(
        self,
        base_url: str,
        *,
        auth_header: str,
        secret: str,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(
            api_base(base_url),
            headers={"Authorization": auth_header, "Accept": "application/json"},
            secrets=[secret],
            **options,
        )

    async def data(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        """GET ``path`` below ``/api2/json`` and return the ``data`` member of the envelope."""
        url = f"{self.display_url}{path}"
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        body = await self.get_json(path, params=clean or None)
        if not isinstance(body, dict) or "data" not in body:
            raise SourceMalformedResponse('answer has no "data" envelope', source=self.source, url=url)
        if body.get("errors") and body["data"] is None:
            text = self._redact(_describe_errors(body["errors"]))[:ERROR_TEXT_CHARS]
            raise SourceQueryError(f"request rejected: {text}", source=self.source, url=url)
        return body["data"]

    async def task_log(self, node: str, upid: str, *, limit: int = 500) -> list[str]:
        """The first ``limit`` lines of a task's log (``/nodes/{node}/tasks/{upid}/log``; PBS: node ``localhost``).

        A task that has ended closes its log with ``TASK OK``, ``TASK WARNINGS: n`` or ``TASK ERROR: …``.
        """
        path = f"/nodes/{segment(node)}/tasks/{segment(upid)}/log"
        data = await self.data(path, params={"start": 0, "limit": max(1, min(limit, MAX_TASK_LOG_LINES))})
        if not isinstance(data, list):
            raise SourceMalformedResponse("task log is not a list", source=self.source, url=self.display_url + path)
        lines = [row for row in data if isinstance(row, dict) and isinstance(row.get("t"), str)]
        lines.sort(key=lambda row: row.get("n", 0) if isinstance(row.get("n"), int) else 0)
        return [self._redact(str(row["t"]))[:TASK_LOG_LINE_CHARS] for row in lines]

    def _upstream_error(self, response: httpx.Response, url: str) -> SourceError | None:
        """400 (parameter check) becomes SourceQueryError, a 500 "… does not exist" SourceNotFound, and 596 (the
        node could not reach another cluster node) a transient SourceServerError."""
        status = response.status_code
        if status == PROXY_ERROR:
            excerpt = self._redact(response.text[:ERROR_TEXT_CHARS])
            error = SourceServerError(
                f"HTTP {status}: {self._reason(response)}",
                source=self.source,
                url=url,
                status_code=status,
                body_excerpt=excerpt,
            )
            # the node we asked could not reach the node owning the resource: a cluster hiccup worth one more try
            error.transient = True
            return error
        if status not in (400, 500):
            return None
        reason = self._reason(response)
        if status == 400:
            return SourceQueryError(f"request rejected: {reason}", source=self.source, url=url)
        if "does not exist" in reason:
            excerpt = self._redact(response.text[:ERROR_TEXT_CHARS])
            return SourceNotFound(reason, source=self.source, url=url, status_code=status, body_excerpt=excerpt)
        return None

    def _reason(self, response: httpx.Response) -> str:
        """The human reason of an error: PVE's ``errors``/``message`` members or status line, PBS's plain text."""
        text = response.text[: ERROR_TEXT_CHARS * 4]
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            if body.get("errors"):
                text = _describe_errors(body["errors"])
            elif body.get("message"):
                text = str(body["message"])
            else:
                text = response.reason_phrase
        return self._redact(text.strip())[:ERROR_TEXT_CHARS] or response.reason_phrase or "no reason given"


def _param(value: Any) -> Any:
    # PVE/PBS expect booleans as 0/1; httpx would send "True"/"False".
    if isinstance(value, bool):
        return int(value)
    return value
