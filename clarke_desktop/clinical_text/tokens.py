"""Words, numbers and punctuation with their code-point offsets in the text as given.

Names that carry digits ("GAD-7", "PHQ-9", "B12", "COVID-19") are one word token, so their digits
are never read as a value. Numbers keep thousands separators ("1,000") and decimals ("7.5").
"""

from __future__ import annotations

import re
from typing import NamedTuple

_TOKEN = re.compile(
    r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)"  # 1,000 / 12,500.5
    r"|\d+(?:\.\d+)?"  # 7 / 7.5
    r"|[xX](?=\d)"  # "x6/day": times
    r"|[^\W\d_][^\W_]*(?:['’\-][^\W_]+)*"  # words (any script), with digits inside names
    r"|[/%.,;:?!()\-+<>=~*^°×\n]"
)
SENTENCE_END = frozenset({".", "?", "!", "\n"})
CLAUSE_END = SENTENCE_END | {";", ":"}


class Token(NamedTuple):  # a tuple: cheap to make by the hundred thousand
    text: str
    lower: str
    start: int
    end: int

    @property
    def is_number(self) -> bool:
        return self.text[0].isdigit()

    @property
    def is_word(self) -> bool:
        return self.text[0].isalpha()


def tokenize(text: str) -> list[Token]:
    """Tokens of `text`; `text[t.start:t.end] == t.text` for each."""
    return [
        Token(m.group(), m.group().lower().replace("’", "'"), m.start(), m.end())
        for m in _TOKEN.finditer(text)
    ]


def sentence_index(tokens: list[Token]) -> list[int]:
    """The sentence number of each token (sentences end at . ? ! and line breaks)."""
    out, n = [], 0
    for t in tokens:
        out.append(n)
        if t.lower in SENTENCE_END:  # decimals live inside number tokens: a lone "." ends a sentence
            n += 1
    return out
