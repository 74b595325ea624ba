"""Shared parts of the LangChain tools: the time-window argument schema and the wrapper that turns a read-only
async function into a ``StructuredTool`` whose failures reach the model as text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tools.errors import SourceError
from tools.render import clip

MAX_LOOKBACK_MIN = 7 * 24 * 60
ERROR_CHARS = 600

A = TypeVar("A", bound=BaseModel)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class ToolArgs(BaseModel):
    """Base of every argument schema: unknown arguments are refused so a typo is reported, not ignored."""

    model_config = ConfigDict(extra="forbid")


class WindowArgs(ToolArgs):
    """A time window ending at ``end`` (default: now) and reaching ``lookback_minutes`` back."""

    lookback_minutes: int = Field(
        60, ge=1, le=MAX_LOOKBACK_MIN, description="How far back from `end` to look, in minutes (1 to 10080)."
    )
    end: datetime | None = Field(
        None, description="End of the window as ISO 8601 (e.g. 2024-05-01T10:00:00Z); default now. UTC if no zone."
    )

    @field_validator("end")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    def window(self, clock: Clock) -> tuple[datetime, datetime]:
        """``(start, end)`` as aware datetimes."""
        end = self.end or clock()
        return end - timedelta(minutes=self.lookback_minutes), end

    def window_s(self, clock: Clock) -> tuple[int, int]:
        """``(start, end)`` as epoch seconds."""
        start, end = self.window(clock)
        return int(start.timestamp()), int(end.timestamp())


def _validation_message(error: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in error.errors(include_url=False)
    )
    return clip(f"invalid arguments: {problems}", ERROR_CHARS)


def _tool_error(error: ToolException) -> str:
    return clip(str(error), ERROR_CHARS)


def make_tool(
    name: str,
    description: str,
    schema: type[A],
    run: Callable[[A], Awaitable[str]],
) -> StructuredTool:
    """A StructuredTool over ``run``: arguments validated by ``schema``; data-source failures, bad selectors and
    invalid arguments come back to the model as a short text that says what went wrong, never as an exception.
    """

    async def call(**kwargs: Any) -> str:
        try:
            args = schema.model_validate(kwargs)
            return await run(args)
        except SourceError as exc:
            raise ToolException(f"{name} failed: {exc}") from exc
        except ValidationError as exc:
            raise ToolException(_validation_message(exc)) from exc
        except ValueError as exc:
            # selectors and label names refused by tools.selectors, naive times, empty ranges
            raise ToolException(f"{name}: invalid argument: {exc}") from exc

    return StructuredTool.from_function(
        coroutine=call,
        name=name,
        description=description,
        args_schema=schema,
        handle_tool_error=_tool_error,
        handle_validation_error=_validation_message,
    )
