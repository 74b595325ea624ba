"""What the Proxmox VE and Proxmox Backup Server fakes share: API-token auth, the ``/api2/json`` prefix, the client
wired to the fake, and how both products filter and page their task lists.

The products differ in the token header (``PVEAPIToken=id=SECRET`` vs ``PBSAPIToken=id:SECRET``) and in how they
word a rejection, so each fake gives its token pattern and its own :meth:`FakeProxmoxApi.rejected` answers.
"""

from __future__ import annotations

import re
from typing import Any, Generic, Literal, TypeVar

import httpx

from tests.fakes import FakeUpstream
from tools.proxmox_api import ProxmoxApiClient

PREFIX = "/api2/json"

C = TypeVar("C", bound=ProxmoxApiClient)
Rejection = Literal["token-format", "token-value", "no-path"]


class FakeProxmoxApi(FakeUpstream, Generic[C]):
    """Token check and prefix routing; subclasses set the class attributes and implement ``route``."""

    base_url: str
    client_class: type[C]
    token_pattern: re.Pattern[str]
    default_token_id: str
    default_token_secret: str
    first_pid: int

    def __init__(self, *, token_id: str | None = None, token_secret: str | None = None, delay_s: float = 0.0) -> None:
        super().__init__(delay_s=delay_s)
        self.token_id = token_id or self.default_token_id
        self.token_secret = token_secret or self.default_token_secret
        self.tasks: list[dict[str, Any]] = []
        self._pid = self.first_pid

    def client(self, **kwargs: Any) -> C:
        """A client talking to this fake (keyword arguments override the defaults)."""
        options: dict[str, Any] = {
            "token_id": self.token_id,
            "token_secret": self.token_secret,
            "transport": self.transport(),
            "backoff_s": 0.0,
        }
        options.update(kwargs)
        return self.client_class(self.base_url, **options)

    def next_pid(self) -> int:
        """The process id of the next task (UPIDs embed it)."""
        self._pid += 1
        return self._pid

    def respond(self, request: httpx.Request) -> httpx.Response:
        """Check the API token, then route GETs below ``/api2/json``; anything else is the product's "no such path"."""
        auth = self.token_pattern.match(request.headers.get("authorization", ""))
        if auth is None:
            return self.rejected("token-format", request)
        if auth.group("id") != self.token_id or auth.group("secret") != self.token_secret:
            return self.rejected("token-value", request)
        if request.method != "GET" or not request.url.path.startswith(PREFIX + "/"):
            return self.rejected("no-path", request)
        return self.route(request, request.url.path.removeprefix(PREFIX))

    def rejected(self, why: Rejection, request: httpx.Request) -> httpx.Response:
        """The product's answer to a malformed token (``token-format``), a wrong one (``token-value``) or a request
        outside the API (``no-path``)."""
        raise NotImplementedError

    def route(self, request: httpx.Request, path: str) -> httpx.Response:
        """Answer an authenticated GET of ``path`` (below the prefix)."""
        raise NotImplementedError


def page_tasks(tasks: list[dict[str, Any]], params: httpx.QueryParams) -> tuple[list[dict[str, Any]], int]:
    """Apply the filters both task lists know (``since``/``until`` on the start time, ``errors``), newest first, then
    the ``start``/``limit`` page; return the page and the total before paging. Parameters are already validated."""
    if "since" in params:
        tasks = [t for t in tasks if t["starttime"] >= int(params["since"])]
    if "until" in params:
        tasks = [t for t in tasks if t["starttime"] <= int(params["until"])]
    if params.get("errors") in ("1", "true"):
        tasks = [t for t in tasks if t.get("status") not in (None, "OK")]
    tasks = sorted(tasks, key=lambda t: t["starttime"], reverse=True)
    start = int(params.get("start", "0"))
    limit = int(params.get("limit", "50"))
    return tasks[start : start + limit], len(tasks)
