"""The chat model of /ask and the translation of its failures into sentences a user can act on."""

from __future__ import annotations

import httpx
import openai
from langchain_openai import ChatOpenAI

from triage.agent.events import LlmNotConfigured
from triage.analysis.chat_model import build_chat_model
from triage.settings import LlmSettings

NOT_CONFIGURED = (
    "no language model is configured: set OPENAI_BASE_URL to an OpenAI-compatible endpoint "
    "(Ollama, vLLM, llama.cpp …) and/or OPENAI_API_KEY, and LLM_MODEL to the model name"
)
ERROR_DETAIL_CHARS = 200


def ask_chat_model(llm: LlmSettings) -> ChatOpenAI:
    """The streaming chat model of /ask (:func:`triage.analysis.chat_model.build_chat_model`); LlmNotConfigured
    when no endpoint is set."""
    if not llm.configured:
        raise LlmNotConfigured(NOT_CONFIGURED)
    return build_chat_model(llm, streaming=True)


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
