"""The chat model of every LLM call — the triage analysis and /ask — built one way from :class:`LlmSettings`.

Both talk to the same OpenAI-compatible endpoint with the same limits: the configured model, timeout and output
token limit, one retry, temperature 0 (the same evidence gets the same explanation; local servers otherwise sample,
llama.cpp at 0.8), and the output limit also as ``max_tokens`` for servers that ignore ``max_completion_tokens``
(:func:`triage.analysis.llm_compat.output_limit_body`). What differs on purpose is a parameter: /ask streams its
answer as the model writes it (``streaming``), the triage call waits for the whole structured answer.
"""

from __future__ import annotations

from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from triage.analysis.llm_compat import output_limit_body
from triage.settings import LlmSettings

# Local OpenAI-compatible servers accept any key; the client library refuses to start without one.
PLACEHOLDER_KEY = "sk-no-key-required"
LLM_MAX_RETRIES = 1


def build_chat_model(settings: LlmSettings, *, streaming: bool = False) -> ChatOpenAI:
    """A ChatOpenAI for the configured endpoint (the caller checks ``settings.configured`` first).

    ``streaming`` makes every call stream its answer, with the token usage in the last chunk.
    """
    return ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key or SecretStr(PLACEHOLDER_KEY),
        timeout=settings.llm_timeout_s,
        max_retries=LLM_MAX_RETRIES,
        max_completion_tokens=settings.llm_max_output_tokens,
        # servers that ignore max_completion_tokens (Ollama, llama.cpp) read max_tokens
        extra_body=output_limit_body(settings) or None,
        temperature=0,
        streaming=streaming,
        stream_usage=streaming,
    )
