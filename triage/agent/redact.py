"""Configured secrets, collected once, so that nothing /ask emits can carry one.

The model never sees a secret (the prompt has none, clients redact their errors); this is the last line: every
answer, event and stored turn passes :meth:`Redactor.redact` before it leaves the process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr

from triage.agent.events import AskEvent

MASK = "[redacted]"
# shorter values would mask ordinary words; real tokens and passwords are longer
MIN_SECRET_CHARS = 6


def _url_password(value: str) -> str | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return unquote(parts.password) if parts.password else None


def secret_values(settings: BaseModel) -> list[str]:
    """Every SecretStr value of the settings tree, and passwords embedded in URL settings."""
    found: list[str] = []

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(value)
            elif isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, str) and "://" in value:
                password = _url_password(value)
                if password:
                    found.append(password)

    walk(settings)
    return sorted({s for s in found if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def redact_data(self, data: Any) -> Any:
        """A JSON-like value (dicts, lists, strings) with every secret masked in keys and values."""
        if not self.secrets:
            return data
        if isinstance(data, str):
            return self.redact(data)
        if isinstance(data, dict):
            return {self.redact(str(k)): self.redact_data(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.redact_data(v) for v in data]
        return data

    def event(self, event: AskEvent) -> AskEvent:
        return AskEvent(event.type, self.redact_data(event.data))
