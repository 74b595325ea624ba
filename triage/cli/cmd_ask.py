"""``sre-triage ask QUESTION``: the /ask agent in the terminal, streaming the same events as ``POST /ask/stream``.

Progress goes to stderr, the answer and its sources to stdout (``--json`` prints the answer event as JSON), so the
answer can be piped. The answer is printed as the model writes it (``answer_delta`` events); text the model wrote
before turning to tool calls stays on the terminal, ended by a line break. ``--session`` continues a conversation; the
session id is printed after every answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from triage.settings import Settings, load_settings

if TYPE_CHECKING:
    from triage.agent.events import AskEvent

# Without API_TOKEN the terminal still gets sessions of its own, apart from any API client.
LOCAL_OWNER = "sre-triage ask (local)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="+", help="the question, e.g. 'why is jellyfin slow since yesterday?'")
    parser.add_argument("--session", metavar="ID", help="continue the conversation with this session id")
    parser.add_argument("--json", action="store_true", help="print the answer event as JSON instead of text")
    parser.add_argument("--quiet", action="store_true", help="do not print progress to stderr")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    return asyncio.run(
        ask(settings, " ".join(args.question), session_id=args.session, as_json=args.json, quiet=args.quiet)
    )


def owner_for(settings: Settings) -> str:
    from triage.agent.sessions import owner_identity

    token = settings.api.api_token
    return owner_identity(token.get_secret_value() if token else LOCAL_OWNER)


async def ask(
    settings: Settings,
    question: str,
    *,
    session_id: str | None = None,
    as_json: bool = False,
    quiet: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Ask one question and print the stream; 0 when answered, 1 on an error event or a refused question."""
    # imported here, not at the top: the agent pulls in LangChain and Chroma, and `sre-triage --help` imports this
    from redis.asyncio import Redis

    from reports.store import open_store
    from triage.agent.events import AskError
    from triage.agent.wiring import open_ask_service

    out = out or sys.stdout
    err = err or sys.stderr
    redis: Redis = Redis.from_url(settings.redis.redis_url)
    store = open_store(settings.storage.database_url)
    await store.init()
    try:
        async with open_ask_service(settings, redis=redis, store=store) as service:
            try:
                service.check_question(question)
                service.agent()
                # the hourly LLM budget is shared with the API and the workers: a spent one refuses here too
                slot = await service.admit()
            except AskError as exc:
                print(f"sre-triage ask: {exc}", file=err)
                return 1
            try:
                session = await service.open_session(session_id, owner_for(settings))
            except AskError as exc:
                slot.release()
                print(f"sre-triage ask: {exc}", file=err)
                return 1
            status = 0
            printer = _Printer(as_json=as_json, quiet=quiet, out=out, err=err)
            try:
                async for event in service.stream(question, session=session):
                    if event is None:
                        continue
                    if event.type == "error":
                        status = 1
                    printer.print(event)
            finally:
                slot.release()
            return status
    finally:
        await store.close()
        await redis.aclose()


class _Printer:
    """Prints the events of one question; remembers the answer text the ``answer_delta`` events already printed."""

    def __init__(self, *, as_json: bool, quiet: bool, out: TextIO, err: TextIO) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.out = out
        self.err = err
        self.shown = ""

    def print(self, event: AskEvent) -> None:
        data: dict[str, Any] = event.data
        if event.type == "answer_delta":
            self._delta(data)
        elif event.type == "answer":
            self._answer(data)
        elif event.type == "error":
            self._end_line()
            print(f"error: {data.get('message', 'the question failed')}", file=self.err)
        elif self.quiet or event.type == "done":
            return
        elif event.type == "status":
            print(f"… {data.get('message', '')}", file=self.err)
        elif event.type == "tool_start":
            print(f"→ {data['name']} {json.dumps(data.get('args') or {}, ensure_ascii=False)}", file=self.err)
        elif event.type == "tool_end":
            state = "ok" if data.get("ok") else "failed"
            ms, chars = data.get("ms", 0), data.get("chars", 0)
            print(f"← {data['name']} {state} in {ms:.0f} ms ({chars} chars)", file=self.err)

    def _delta(self, data: dict[str, Any]) -> None:
        if self.as_json:
            return  # stdout carries the one JSON answer
        if data.get("reset"):
            self._end_line()
        text = str(data.get("text", ""))
        if text:
            self.out.write(text)
            self.out.flush()
            self.shown += text

    def _end_line(self) -> None:
        if self.shown:
            print(file=self.out, flush=True)
            self.shown = ""

    def _answer(self, data: dict[str, Any]) -> None:
        if self.as_json:
            print(json.dumps(data, ensure_ascii=False, indent=2), file=self.out)
            return
        answer = str(data["answer"])
        if self.shown and answer.startswith(self.shown):
            print(answer[len(self.shown) :], file=self.out)  # normally nothing: the deltas carried all of it
            self.shown = ""
        else:
            self._end_line()
            print(answer, file=self.out)
        if data["sources"]:
            print("\nSources:", file=self.out)
            for source in data["sources"]:
                detail = (
                    json.dumps(source["args"], ensure_ascii=False) if source.get("args") else source.get("ref") or ""
                )
                link = f" <{source['url']}>" if source.get("url") else ""
                print(f"  [{source['kind']}] {source['name']} {detail}{link}".rstrip(), file=self.out)
        print(f"\nsession: {data['session_id']}", file=self.out)
