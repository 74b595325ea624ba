"""/ask over HTTP, and the chat page.

* ``POST /ask {question, session_id?}`` → ``{answer, session_id, sources, cut, tool_calls, usage}``
* ``POST /ask/stream`` → server-sent events ``status``, ``tool_start``, ``tool_end``, ``answer_delta`` (the answer as
  the model writes it), ``answer``, ``error``, ``done``
* ``GET /ask/reports`` → the newest triage reports (JSON), for the chat page
* ``GET /`` → the chat page, ``GET /chat/{chat.js,chat.css}`` its assets (``webhook/static``; no external assets)

Both /ask endpoints and ``/ask/reports`` require ``Authorization: Bearer $API_TOKEN`` or the browser login cookie (then
from this site only), the dependency :func:`webhook.browser_auth.api_access`; a session belongs to the token that
opened it. The chat page and its assets are static and public.
Problems found before the stream starts (credentials, no model configured, unknown session, empty question) are
JSON errors with their status; a failure during the run is an ``error`` event. When the client disconnects, the
stream's generator is cancelled and it cancels the run: the model call and the tool calls stop.

Both endpoints answer 429 (JSON, with ``Retry-After``) when the hourly LLM token budget shared with triage is spent
(``llm_budget_spent``, the message says when it resets) or ``ASK_MAX_CONCURRENT`` questions are already running in
this process (``too_many_questions``). A budget that runs out during a streamed question ends it with an ``error``
event of the same code and status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from reports.links import LinkSigner
from triage.agent.admission import AskSlot
from triage.agent.events import AskError, AskEvent
from triage.agent.service import AskService, answer_event
from triage.agent.sessions import Session
from triage.agent.wiring import open_ask_service
from triage.settings import Settings
from webhook.browser_auth import Access, api_access
from webhook.errors import ApiError, ServiceUnavailable
from webhook.health import RunbookIndexLike, runbook_readiness

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"chat.js": "text/javascript", "chat.css": "text/css"}
RECENT_REPORTS = 20
# The page loads nothing from elsewhere and runs no inline script.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


@asynccontextmanager
async def ask_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the /ask resources after the app's own (Redis, store) and close them first."""
    if getattr(app.state, "ask", None) is not None:
        yield
        return
    settings: Settings = app.state.settings
    async with open_ask_service(
        settings,
        redis=app.state.arq,
        store=app.state.store,
        source_tools=getattr(app.state, "ask_source_tools", None),
        runbooks=getattr(app.state, "runbooks", None),
    ) as service:
        app.state.ask = service
        index = service.runbook_index
        if callable(getattr(index, "count", None)):
            app.state.ready_checks["runbooks"] = partial(runbook_readiness, cast(RunbookIndexLike, index))
        try:
            yield
        finally:
            app.state.ready_checks.pop("runbooks", None)
            app.state.ask = None


router = APIRouter(lifespan=ask_lifespan)


class AskRequest(BaseModel):
    question: str = Field(..., min_length=1, max_length=20_000)
    session_id: str | None = Field(None, max_length=200)


class AskFailed(ApiError):
    """An AskError at the HTTP boundary, carrying the error's own status and code."""

    def __init__(self, exc: AskError) -> None:
        retry_after = getattr(exc, "retry_after_s", None)
        super().__init__(str(exc), headers={"Retry-After": str(retry_after)} if retry_after else None)
        self.status = exc.status_code
        self.code = exc.code


# the caller's credentials (API_TOKEN as bearer, or the login cookie); its owner is the one of the sessions it opens
Caller = Annotated[Access, Depends(api_access)]


def _service(request: Request) -> AskService:
    service: AskService | None = getattr(request.app.state, "ask", None)
    if service is None:
        raise ServiceUnavailable("/ask is starting or stopping; retry in a moment")
    return service


async def _prepare(request: Request, body: AskRequest, owner: str) -> tuple[AskService, Session, AskSlot]:
    """Everything that can refuse a question, before any work starts; the caller releases the slot."""
    service = _service(request)
    try:
        service.check_question(body.question)
        service.agent()  # LlmNotConfigured before a session is opened
        slot = await service.admit()
    except AskError as exc:
        raise AskFailed(exc) from exc
    try:
        session = await service.open_session(body.session_id, owner)
    except BaseException as exc:
        slot.release()
        if isinstance(exc, AskError):
            raise AskFailed(exc) from exc
        raise
    return service, session, slot


class _SlotStreamingResponse(StreamingResponse):
    """Releases the question's slot however the response ends, even when the stream never started."""

    def __init__(self, content: AsyncIterator[str], slot: AskSlot, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.release()


@router.post("/ask")
async def ask(request: Request, body: AskRequest, caller: Caller) -> JSONResponse:
    """Answer a question; the answer names its sources. 502 when the model fails, 503 when none is configured."""
    service, session, slot = await _prepare(request, body, caller.owner)
    events: list[AskEvent] = []

    async def collect(event: AskEvent) -> None:
        events.append(event)

    try:
        result = await service.ask(body.question, session=session, emit=collect)
    except AskError as exc:
        raise AskFailed(exc) from exc
    finally:
        slot.release()
    return JSONResponse(answer_event(result, session.id).data)


@router.post("/ask/stream")
async def ask_stream(request: Request, body: AskRequest, caller: Caller) -> StreamingResponse:
    """The same, as server-sent events while the work happens."""
    service, session, slot = await _prepare(request, body, caller.owner)

    async def frames() -> AsyncIterator[str]:
        try:
            async for event in service.stream(body.question, session=session):
                yield ": keep-alive\n\n" if event is None else event.sse()
        finally:
            slot.release()

    return _SlotStreamingResponse(
        frames(),
        slot,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/ask/reports", dependencies=[Depends(api_access)])
async def recent_reports(request: Request) -> dict[str, Any]:
    """The newest triage reports, for the chat page's report list."""
    signer = LinkSigner.from_settings(request.app.state.settings)
    store = getattr(request.app.state, "store", None)
    if store is None:
        raise ServiceUnavailable("the report store is starting or stopping; retry in a moment")
    reports = await store.list(limit=RECENT_REPORTS)
    return {
        "reports": [
            {
                "id": r.id,
                "alertname": r.alert.alertname,
                "status": r.status.value,
                "starts_at": r.alert.starts_at.isoformat(),
                "summary": r.summary[:300],
                # relative and signed: the page opens it in the browser, which carries no bearer token
                "url": f"/reports/{quote(r.id, safe='')}{signer.query(r.id)}",
            }
            for r in reports
        ]
    }


@router.get("/", include_in_schema=False)
async def chat_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "chat.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


class _NotFound(ApiError):
    status = 404
    code = "not_found"


@router.get("/chat/{name}", include_in_schema=False)
async def chat_asset(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise _NotFound(f"no chat asset named {name[:80]!r}")
    return FileResponse(STATIC_DIR / name, media_type=f"{media_type}; charset=utf-8", headers=PAGE_HEADERS)
