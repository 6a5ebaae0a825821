"""The engine interface every LLM backend implements, and the errors it raises.

Prompts are lists of turns that our code renders in Gemma's turn format (no system role,
alternating user/model). Untrusted text must be neutralised before it enters a turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, Required, TypedDict, TypeVar, Unpack, runtime_checkable

from pydantic import BaseModel

from clarke_desktop.cancel import CancelToken
from clarke_desktop.errors import ClarkeError
from clarke_desktop.schemas import ModelInfo

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "model"]
    text: str
    # How many leading characters of `text` a family of requests shares word for word (a letter's
    # instructions, record and transcript, before each section's own request). A backend may read
    # them once and reuse that work; it never changes what the model is asked. 0: nothing shared.
    shared_prefix: int = 0


class LlmError(ClarkeError):
    """Base class; `message` is safe to show a clinician."""


class ModelMissing(LlmError):
    pass


class ModelOutOfMemory(LlmError):
    pass


class ContextTooLong(LlmError):
    """The prompt does not fit the model's context; never truncated silently."""


class InvalidModelOutput(LlmError):
    """Structured output failed validation after the allowed retries."""


class StreamOptions(TypedDict, total=False):
    """`stream()`'s keyword arguments, for the methods that pass them on."""

    max_tokens: Required[int]
    temperature: float
    stop: list[str] | None
    cancel: CancelToken | None
    on_thinking: Callable[[str], None] | None


@runtime_checkable
class LlmEngine(Protocol):
    """What every backend offers. A backend subclasses it to inherit `complete()`."""

    info: ModelInfo

    @property
    def context_length(self) -> int: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self,
        turns: list[Turn],
        *,
        max_tokens: int,
        temperature: float = 0.3,
        stop: list[str] | None = None,
        cancel: CancelToken | None = None,
        on_thinking: Callable[[str], None] | None = None,
    ) -> Iterator[str]:
        """Yield answer text pieces as they are generated; raises Cancelled when `cancel` is set.

        Model "thinking" (MedGemma `<unused94>...<unused95>`) is never yielded: it goes to
        `on_thinking` when given (optional, added compatibly), and is otherwise dropped."""
        ...

    def complete(self, turns: list[Turn], **options: Unpack[StreamOptions]) -> str:
        """`stream()` joined, so both faces share one implementation (and one signature)."""
        return "".join(self.stream(turns, **options))

    def generate_json(
        self,
        turns: list[Turn],
        schema: type[T],
        *,
        max_tokens: int,
        retries: int = 1,
        cancel: CancelToken | None = None,
    ) -> T:
        """Schema-constrained JSON, validated with pydantic; raises InvalidModelOutput."""
        ...

    def close(self) -> None: ...
