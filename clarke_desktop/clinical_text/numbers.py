"""Numbers as clinicians write and say them: digits, thousands separators, decimals, spoken words.

Spoken forms: "one hundred and fifty", "seven point five", "two and a half", "one thirty" (130, the
way readings are said), "one seventeen over fifty six" (a blood pressure), "twenty nineteen" (a
year). Repeated numbers stay separate ("five five" is two fives, "twenty twenty" a year at most).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from clarke_desktop.clinical_text.tokens import Token

UNITS_WORDS = {
    "zero": 0, "oh": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
TEENS_WORDS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS_WORDS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
# "in his sixties": the decade (written "60s")
DECADE_WORDS = {"twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60, "seventies": 70,
                "eighties": 80, "nineties": 90}  # fmt: skip
_STARTERS = (set(UNITS_WORDS) - {"oh", "nought"}) | set(TEENS_WORDS) | set(TENS_WORDS) | {"a", "half"}


def may_start_number(token: Token) -> bool:
    """A cheap test before parse_number: digits, a number word, or a decade."""
    return token.is_number or token.lower.split("-", 1)[0] in _STARTERS or token.lower in DECADE_WORDS


def to_decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    value: Decimal
    end: int  # token index one past the number
    spoken: bool


def _parts(tokens: list[Token], i: int) -> list[str]:
    """Lowercase word parts from token i on ("fifty-five" -> "fifty", "five"), with their token index."""
    return tokens[i].lower.split("-") if i < len(tokens) else []


class _Words:
    """A cursor over number words; hyphenated tokens are split into parts."""

    def __init__(self, tokens: list[Token], i: int) -> None:
        self.items: list[tuple[str, int]] = []  # (word, token index one past it once consumed)
        j = i
        while j < len(tokens) and tokens[j].is_word and len(self.items) < 16:
            parts = tokens[j].lower.split("-")
            for p in parts:
                self.items.append((p, j + 1))
            j += 1
        self.pos = 0

    def peek(self, k: int = 0) -> str:
        return self.items[self.pos + k][0] if self.pos + k < len(self.items) else ""

    def take(self) -> str:
        word = self.peek()
        self.pos += 1
        return word

    def token_end(self) -> int:
        return self.items[self.pos - 1][1]

    def at_token_boundary(self) -> bool:
        return (
            self.pos == 0
            or self.pos == len(self.items)
            or self.items[self.pos - 1][1] != self.items[self.pos][1]
        )


def _below_hundred(w: _Words) -> int | None:
    word = w.peek()
    if word in TENS_WORDS:
        w.take()
        value = TENS_WORDS[word]
        if w.peek() in UNITS_WORDS and w.peek() not in {"zero", "oh", "nought"}:
            value += UNITS_WORDS[w.take()]
        return value
    if word in TEENS_WORDS:
        w.take()
        return TEENS_WORDS[word]
    if word in UNITS_WORDS and word not in {"oh", "nought"}:
        w.take()
        return UNITS_WORDS[word]
    return None


def _and_rest(w: _Words, part: Callable[[_Words], int | None]) -> int | None:
    """What follows "hundred" or "thousand", with an optional "and"; the cursor is restored when
    nothing numeric follows ("a hundred and ten" -> 10; "a hundred and then" -> None)."""
    save = w.pos
    if w.peek() == "and":
        w.take()
    rest = part(w)
    if rest is None:
        w.pos = save
    return rest


def _below_thousand(w: _Words) -> int | None:
    start = w.pos
    first = _below_hundred(w)
    if first is None:
        return None
    if w.peek() == "hundred" and first < 10:
        w.take()
        return first * 100 + (_and_rest(w, _below_hundred) or 0)
    # "one thirty" (130), "one oh five" (105): how readings and doses are said.
    if 1 <= first <= 9 and w.pos - start == 1:
        save = w.pos
        if w.peek() == "oh" and w.peek(1) in UNITS_WORDS:
            w.take()
            return first * 100 + UNITS_WORDS[w.take()]
        if w.peek() in TENS_WORDS or w.peek() in TEENS_WORDS:
            rest = _below_hundred(w)
            if rest is not None:
                return first * 100 + rest
        w.pos = save
    # "twenty nineteen", "nineteen ninety-eight": years.
    if first in (19, 20) and (w.peek() in TEENS_WORDS or w.peek() in TENS_WORDS):
        save = w.pos
        rest = _below_hundred(w)
        if rest is not None and rest >= 10:
            return first * 100 + rest
        w.pos = save
    return first


def parse_spoken(tokens: list[Token], i: int) -> ParsedNumber | None:
    """A spoken number starting at token i, or None."""
    if i >= len(tokens) or not tokens[i].is_word or tokens[i].lower.split("-")[0] not in _STARTERS:
        return None
    w = _Words(tokens, i)
    if w.peek() == "a" and w.peek(1) in {"hundred", "thousand"}:  # "a hundred and twenty"
        w.items[w.pos] = ("one", w.items[w.pos][1])
    repeated = _digit_sequence(w)
    if repeated is not None:
        return repeated
    if w.peek() in {"a", "half"}:
        if w.peek() == "half" or (w.peek() == "a" and w.peek(1) == "half"):
            if w.peek() == "a":
                w.take()
            w.take()
            return ParsedNumber(Decimal("0.5"), w.token_end(), True)
        return None
    value = _below_thousand(w)
    if value is None:
        return None
    total = Decimal(value)
    if w.peek() == "thousand":
        w.take()
        total = Decimal(value * 1000 + (_and_rest(w, _below_thousand) or 0))
    if w.peek() == "point" and (w.peek(1) in UNITS_WORDS):
        w.take()
        digits = ""
        while w.peek() in UNITS_WORDS:
            digits += str(UNITS_WORDS[w.take()])
        total += Decimal("0." + digits)
    elif w.peek() == "and" and w.peek(1) == "a" and w.peek(2) == "half":
        w.take(), w.take(), w.take()
        total += Decimal("0.5")
    if not w.at_token_boundary():  # stopped inside a hyphenated token: not a clean number
        return None
    return ParsedNumber(total, w.token_end(), True)


def _digit_sequence(w: _Words) -> ParsedNumber | None:
    """Three or more single digits said one by one ("nine nine nine", "one one one"): one number."""
    k = w.pos
    digits = ""
    while w.peek(k - w.pos) in UNITS_WORDS and w.peek(k - w.pos + 1) != "hundred":
        digits += str(UNITS_WORDS[w.peek(k - w.pos)])
        k += 1
    if len(digits) < 3 or len(set(digits)) > 1:
        return None
    end = w.items[k - 1][1]
    w.pos = k
    return ParsedNumber(Decimal(digits), end, True)


def parse_number(tokens: list[Token], i: int) -> ParsedNumber | None:
    """A number in digits or words at token i ("7.5", "1,000", "2 and a half", "seven point five")."""
    if i >= len(tokens):
        return None
    token = tokens[i]
    if token.lower in DECADE_WORDS:
        return ParsedNumber(Decimal(DECADE_WORDS[token.lower]), i + 1, True)
    if token.is_number:
        value = to_decimal(token.text)
        if value is None:
            return None
        end = i + 1
        if (
            end + 2 < len(tokens)
            and [t.lower for t in tokens[end : end + 3]] == ["and", "a", "half"]
            and "." not in token.text
        ):
            return ParsedNumber(value + Decimal("0.5"), end + 3, False)
        return ParsedNumber(value, end, False)
    return parse_spoken(tokens, i)
