"""Gemma turn format, rendered by our code, and defences for untrusted text.

Gemma 3 / MedGemma have no system role and expect strictly alternating turns:

    <bos><start_of_turn>user\\n{text}<end_of_turn>\\n<start_of_turn>model\\n{text}<end_of_turn>\\n
    ...<start_of_turn>model\\n

Instructions are folded into the first user turn (`with_instructions`). Only the scaffolding
between turns is control text; everything inside a turn is tokenised as plain text by the
in-process engine, and `neutralise` defangs control-token look-alikes for backends that parse
special tokens in text (an OpenAI-compatible server renders and tokenises the prompt itself).

MedGemma may "think" between `<unused94>` and `<unused95>` before answering. `ThinkingSplitter`
separates that from the answer as it streams, so thinking can never leak into a letter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from clarke_desktop.llm.base import Turn

START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"
THINK_START = "<unused94>"
THINK_END = "<unused95>"

# Gemma control tokens and the user-defined tokens a tokenizer may match even when special-token
# parsing is off (image markers), plus ChatML/Llama-style markers other servers may use.
_CONTROL_TOKEN = re.compile(
    r"<(/?)(start_of_turn|end_of_turn|bos|eos|pad|unk|mask|s|unused\d+|start_of_image|end_of_image"
    r"|image_soft_token|audio_soft_token|start_of_audio|end_of_audio)>"
    r"|<\|[^<>|\n]{1,40}\|>"
    r"|\[(/?)(multimodal|INST|SYS)\]",
    re.IGNORECASE,
)


def neutralise(text: str) -> str:
    """Make untrusted text (transcript, FHIR narrative, clinician instruction) unable to act as
    control tokens, keeping it readable: `<end_of_turn>` becomes `‹end_of_turn›`.

    Only exact control-token spellings are touched; ordinary angle brackets ("BP < 140") and
    HTML-like tags are left as they are, so no clinical content is changed.
    """

    def _defang(match: re.Match[str]) -> str:
        token = match.group(0)
        return token.replace("<", "‹").replace(">", "›").replace("[", "⟦").replace("]", "⟧")

    return _CONTROL_TOKEN.sub(_defang, text)


@dataclass(frozen=True)
class PromptPart:
    """A piece of a rendered prompt; `control` parts are the only ones tokenised with special tokens."""

    text: str
    control: bool
    ends_shared_prefix: bool = False  # the prompt up to here is a Turn's declared shared prefix


def validate_turns(turns: Sequence[Turn]) -> None:
    if not turns:
        raise ValueError("a prompt needs at least one user turn")
    for index, turn in enumerate(turns):
        expected = "user" if index % 2 == 0 else "model"
        if turn.role != expected:
            raise ValueError(
                f"Gemma turns must alternate starting with 'user' (no system role); "
                f"turn {index} is {turn.role!r}, expected {expected!r}"
            )


def render_parts(turns: Sequence[Turn]) -> list[PromptPart]:
    """Render turns to control/plain parts, ending with an open model turn.

    A trailing model turn is a prefill: generation continues it (e.g. forcing a JSON opening).
    The BOS token is not included; the engine adds it.
    """
    validate_turns(turns)
    parts: list[PromptPart] = []
    for index, turn in enumerate(turns):
        parts.append(PromptPart(f"{START_OF_TURN}{turn.role}\n", control=True))
        cut = min(max(turn.shared_prefix, 0), len(turn.text))
        if cut:  # two plain parts: an engine tokenises them apart, so the prefix's tokens never vary
            parts.append(PromptPart(turn.text[:cut], control=False, ends_shared_prefix=True))
        if cut < len(turn.text) or not turn.text:
            parts.append(PromptPart(turn.text[cut:], control=False))
        is_prefill = turn.role == "model" and index == len(turns) - 1
        if not is_prefill:
            parts.append(PromptPart(f"{END_OF_TURN}\n", control=True))
    if turns[-1].role == "user":
        parts.append(PromptPart(f"{START_OF_TURN}model\n", control=True))
    return parts


def render_text(turns: Sequence[Turn]) -> str:
    """The prompt as one string with untrusted parts neutralised (for backends that take text)."""
    return "".join(p.text if p.control else neutralise(p.text) for p in render_parts(turns))


def with_instructions(instructions: str, turns: Sequence[Turn]) -> list[Turn]:
    """Fold instructions into the first user turn (Gemma has no system role)."""
    validate_turns(turns)
    first = turns[0]
    folded = Turn("user", f"{instructions.strip()}\n\n{first.text}")
    return [folded, *turns[1:]]


class ThinkingSplitter:
    """Incrementally split streamed text into answer and thinking.

    Markers may arrive split across pieces, so a possible marker prefix is held back until it is
    resolved. Thinking that never closes (output cut off) stays thinking: it is never released
    as answer text.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._thinking = False
        self.thinking_text = ""

    def feed(self, piece: str) -> str:
        """Add streamed text; return the answer text that is now safe to show."""
        self._buffer += piece
        answer: list[str] = []
        while self._buffer:
            marker = THINK_END if self._thinking else THINK_START
            found = self._buffer.find(marker)
            if found >= 0:
                self._emit(self._buffer[:found], answer)
                self._buffer = self._buffer[found + len(marker) :]
                self._thinking = not self._thinking
                continue
            keep = _partial_marker_suffix(self._buffer, marker)
            self._emit(self._buffer[: len(self._buffer) - keep], answer)
            self._buffer = self._buffer[len(self._buffer) - keep :]
            break
        return "".join(answer)

    def finish(self) -> str:
        """Flush at the end of the stream."""
        rest, self._buffer = self._buffer, ""
        if self._thinking:
            self.thinking_text += rest
            return ""
        return rest

    def _emit(self, text: str, answer: list[str]) -> None:
        if not text:
            return
        if self._thinking:
            self.thinking_text += text
        else:
            answer.append(text)


def _partial_marker_suffix(text: str, marker: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `marker`."""
    for length in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-length:]):
            return length
    return 0


def split_thinking(text: str) -> tuple[str, str]:
    """(answer, thinking) of a complete output."""
    splitter = ThinkingSplitter()
    answer = splitter.feed(text) + splitter.finish()
    return answer, splitter.thinking_text
