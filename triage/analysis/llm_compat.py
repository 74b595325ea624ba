"""What small local OpenAI-compatible servers need that the OpenAI API does not.

- The output token limit: langchain-openai sends ``max_completion_tokens``, which Ollama's OpenAI endpoint and
  llama.cpp servers ignore; :func:`output_limit_body` adds ``max_tokens`` for every endpoint other than OpenAI's own
  (which refuses some models when both are given).
- Tool calls written as text: a small model offered tools often writes the call as JSON in its answer
  (``{"name": "loki_query", "arguments": {…}}``, in a code fence or ``<tool_call>`` tags) instead of returning a
  ``tool_calls`` entry. :func:`text_tool_call` recognises that, so the caller can go on without tools.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from triage.analysis.answer_json import NoJsonObject, extract_object
from triage.settings import LlmSettings

OPENAI_HOSTS = ("api.openai.com",)
_TOOL_CALL_TAG = re.compile(r"<tool_call>|<\|?tool_call\|?>|\[TOOL_CALLS\]")


def is_openai_endpoint(settings: LlmSettings) -> bool:
    """The endpoint is OpenAI's API itself (no base URL, or one on an OpenAI host)."""
    if not settings.openai_base_url:
        return True
    host = (urlsplit(settings.openai_base_url).hostname or "").lower()
    return host in OPENAI_HOSTS


def output_limit_body(settings: LlmSettings) -> dict[str, Any]:
    """Request fields that carry the output token limit to servers that ignore ``max_completion_tokens``."""
    if is_openai_endpoint(settings):
        return {}
    return {"max_tokens": settings.llm_max_output_tokens}


def text_tool_call(text: str, tool_names: Collection[str]) -> str | None:
    """The tool name when ``text`` is a call of one of ``tool_names`` written as text instead of a tool call."""
    if not text.strip() or not tool_names:
        return None
    tagged = _TOOL_CALL_TAG.search(text) is not None
    try:
        value = extract_object(_TOOL_CALL_TAG.sub("", text)).value
    except NoJsonObject:
        return None
    if isinstance(value.get("function"), dict):  # {"function": {"name": …, "arguments": …}}
        value = value["function"]
    name = value.get("name") or value.get("tool") or value.get("function")
    if not isinstance(name, str):
        return None
    has_arguments = any(key in value for key in ("arguments", "parameters", "args"))
    if name in tool_names and (has_arguments or tagged):
        return name
    return None
