"""The chat model of /ask and the translation of its failures into sentences a user can act on."""

from __future__ import annotations

import httpx
import openai
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from triage.agent.events import LlmNotConfigured
from triage.analysis.llm_compat import output_limit_body
from triage.settings import LlmSettings

NOT_CONFIGURED = (
    "no language model is configured: set OPENAI_BASE_URL to an OpenAI-compatible endpoint "
    "(Ollama, vLLM, llama.cpp …) and/or OPENAI_API_KEY, and LLM_MODEL to the model name"
)
# Local OpenAI-compatible servers accept any key; the client library insists on one.
PLACEHOLDER_KEY = "sk-no-key-required"
ERROR_DETAIL_CHARS = 200


def build_chat_model(llm: LlmSettings) -> ChatOpenAI:
    """A streaming ChatOpenAI for the configured endpoint; LlmNotConfigured when none is set."""
    if not llm.configured:
        raise LlmNotConfigured(NOT_CONFIGURED)
    key = llm.openai_api_key or SecretStr(PLACEHOLDER_KEY)
    return ChatOpenAI(
        model=llm.llm_model,
        base_url=llm.openai_base_url,
        api_key=key,
        timeout=llm.llm_timeout_s,
        max_retries=1,
        max_completion_tokens=llm.llm_max_output_tokens,
        # servers that ignore max_completion_tokens (Ollama, llama.cpp) read max_tokens
        extra_body=output_limit_body(llm) or None,
        streaming=True,
        stream_usage=True,
        temperature=0,
    )


def describe_llm_error(exc: BaseException) -> str:
    """A short, secret-free sentence for a failed model call (the endpoint's own message is cut short)."""
    if isinstance(exc, openai.APITimeoutError):
        return "the model endpoint did not answer in time"
    if isinstance(exc, openai.APIConnectionError):
        return "cannot reach the model endpoint (connection failed)"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return f"the model endpoint rejected the credentials (HTTP {exc.status_code}); check OPENAI_API_KEY"
    if isinstance(exc, openai.NotFoundError):
        return "the model endpoint does not know this model or path (HTTP 404); check LLM_MODEL and OPENAI_BASE_URL"
    if isinstance(exc, openai.APIStatusError):
        detail = _detail(exc)
        return f"the model endpoint answered HTTP {exc.status_code}" + (f": {detail}" if detail else "")
    # langchain raises a bare ValueError when a stream ends without any chunk it can parse
    if isinstance(exc, ValueError | openai.APIResponseValidationError | httpx.DecodingError):
        return "the model endpoint sent a reply that is not a valid chat completion"
    if isinstance(exc, openai.APIError):
        return "the model endpoint sent an unusable reply"
    return f"the model call failed ({type(exc).__name__})"


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message) if message else ""
    # keys that endpoints echo back ("Incorrect API key provided: sk-...") are not repeated
    if "key" in text.lower():
        return "credentials problem"
    return text[:ERROR_DETAIL_CHARS]
