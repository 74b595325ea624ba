"""Configured secrets, collected once, so that nothing /ask emits can carry one.

The model never sees a secret (the prompt has none, clients redact their errors); this is the last line: every
answer, event and stored turn passes :meth:`Redactor.redact` before it leaves the process. An answer that leaves in
pieces while the model writes it passes a :class:`RedactedStream`, since a secret can be split across pieces.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from triage.agent.events import AskEvent

MASK = "[redacted]"
# where a streamed answer may be released: after a word
_SPACES = (" ", "\n", "\t", "\r")
# shorter values would mask ordinary words; real tokens and passwords are longer
MIN_SECRET_CHARS = 6


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

    def stream(self) -> RedactedStream:
        """A redactor for text that arrives in pieces."""
        return RedactedStream(self)


class RedactedStream:
    """Text that arrives in pieces (an answer as the model writes it), released redacted and only once final.

    A piece is held back until nothing that arrives later can change its redaction: text is released up to its last
    whitespace, never past the point where a secret may have begun (the end of the text is the start of a secret) and
    never inside a secret (secrets may contain spaces). A secret split across pieces is therefore masked whole.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self.raw = ""
        self._released = 0

    @property
    def released(self) -> str:
        """The raw text released so far: whole words, never part of a secret."""
        return self.raw[: self._released]

    def feed(self, piece: str) -> str:
        """Add ``piece``; return the redacted text it made final ('' when nothing more is final yet)."""
        self.raw += piece
        end = self._safe_end()
        if end <= self._released:
            return ""
        # no secret spans the previous end or this one, so the parts redact the same as the whole
        text = self._redactor.redact(self.raw[self._released : end])
        self._released = end
        return text

    def _safe_end(self) -> int:
        raw = self.raw
        end = len(raw)
        for secret in self._redactor.secrets:
            for size in range(min(len(secret) - 1, len(raw)), 0, -1):
                if raw.endswith(secret[:size]):
                    end = min(end, len(raw) - size)
                    break
        while end > self._released:
            cut = 1 + max(raw.rfind(space, self._released, end) for space in _SPACES)
            if cut <= self._released:
                break
            spanning = [start for secret in self._redactor.secrets if (start := _start_across(raw, secret, cut)) >= 0]
            if not spanning:
                return cut
            end = min(spanning)
        return self._released


def _start_across(text: str, secret: str, cut: int) -> int:
    """Where an occurrence of ``secret`` that spans position ``cut`` of ``text`` starts; -1 when none does."""
    start = text.find(secret, max(0, cut - len(secret) + 1), cut + len(secret) - 1)
    return start if 0 <= start < cut else -1
