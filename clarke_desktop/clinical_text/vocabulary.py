"""Drug names as clinicians say them: generic, UK and US brand names and synonyms -> one canonical
(UK) name, and drug classes for allergy cross-reactivity.

The data is `resources/clinical/drugs.json`, built by `scripts/build_drug_vocabulary.py` from the
drug-named-entity-recognition package (see resources/clinical/README.md). Names are compared after
lower-casing with any run of punctuation or spaces read as one space, so "Co-Amoxiclav", "co amoxiclav"
and "co-amoxiclav" are the same name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from clarke_desktop.paths import resources_dir

MAX_DRUG_WORDS = 4
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def normalise(name: str) -> str:
    """The lookup key of a name (the build script uses the same rule)."""
    return _SEPARATORS.sub(" ", name.lower()).strip()


@lru_cache(maxsize=1 << 16)
def _word_key(word: str) -> str:
    """normalise() of one token, cached: running text repeats its words."""
    return word if word.isalpha() and word.islower() and word.isascii() else normalise(word)


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    variants: dict[str, str]  # normalised variant -> canonical
    heads: frozenset[str]  # first word of every variant that longest_drug_at may match
    joined: frozenset[str]  # spelled-out combinations ("paracetamol and codeine"): whole names only
    classes: dict[str, frozenset[str]]  # display name -> members
    aliases: dict[str, str]  # normalised alias -> display name
    class_heads: frozenset[str]
    max_class_words: int
    drug_to_classes: dict[str, tuple[str, ...]]
    lookalikes: tuple[tuple[str, str], ...]
    canonical: frozenset[str]


def _plural_forms(alias: str) -> tuple[str, ...]:
    # Regular plurals only: "anti-inflammatories" and its like are listed as said.
    if len(alias.rsplit(" ", 1)[-1]) < 3 or alias.endswith(("y", "ies")):
        return ()
    return (alias[:-1],) if alias.endswith("s") else (alias + "s",)


@cache
def _vocabulary() -> _Vocabulary:
    path = resources_dir() / "clinical" / "drugs.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    variants = {normalise(v): c for v, c in data["variants"].items()}
    # "paracetamol and codeine" said aloud is two drugs as often as it is co-codamol: a spelled-out
    # combination is matched as a whole name only, never inside running text.
    joined = frozenset(k for k in variants if " and " in f" {k} ")
    heads = frozenset(k.split(" ", 1)[0] for k in variants if k not in joined)

    classes: dict[str, frozenset[str]] = {}
    aliases: dict[str, str] = {}
    drug_to_classes: dict[str, list[str]] = {}
    for cls in data["classes"].values():
        name = cls["name"]
        classes[name] = frozenset(cls["members"])
        for member in cls["members"]:
            drug_to_classes.setdefault(member, []).append(name)
        explicit = [normalise(a) for a in cls["aliases"]] + [normalise(name)]
        for alias in explicit:
            aliases[alias] = name
        # Singular and plural of each alias, unless that form is a drug ("tetracycline"); an alias that is
        # also a drug ("penicillin") is listed explicitly.
        for alias in explicit:
            for form in _plural_forms(alias):
                if form not in variants:
                    aliases.setdefault(form, name)
    return _Vocabulary(
        variants=variants,
        heads=heads,
        joined=joined,
        classes=classes,
        aliases=aliases,
        class_heads=frozenset(a.split(" ", 1)[0] for a in aliases),
        max_class_words=max(len(a.split()) for a in aliases),
        drug_to_classes={d: tuple(sorted(n)) for d, n in drug_to_classes.items()},
        lookalikes=tuple((a, b) for a, b in data["lookalikes"]),
        canonical=frozenset(variants.values()),
    )


def canonical_drug(name: str) -> str | None:
    """The canonical (UK) name of a drug name, brand or synonym; None when it is not a known drug."""
    return _vocabulary().variants.get(normalise(name))


def is_drug(word: str) -> bool:
    """Whether `word` (or phrase) is a known drug name."""
    return canonical_drug(word) is not None


def _longest_at(
    words: Sequence[str],
    i: int,
    table: dict[str, str],
    heads: frozenset[str],
    max_words: int,
    skip: frozenset[str] = frozenset(),
) -> tuple[str, int] | None:
    if i >= len(words):
        return None
    first = _word_key(words[i])
    if not first or first.split(" ", 1)[0] not in heads:
        return None
    end = i + 1
    # A name never runs across punctuation ("aspirin, and ...").
    while end < min(len(words), i + max_words) and _word_key(words[end]):
        end += 1
    for j in range(end, i, -1):
        key = first if j == i + 1 else normalise(" ".join(words[i:j]))
        found = table.get(key)
        if found is not None and key not in skip:
            return found, j
    return None


def may_start_name(word: str) -> bool:
    """A cheap test before longest_drug_at / longest_class_at: can a drug or class name start here?"""
    v = _vocabulary()
    key = _word_key(word)
    head = key.split(" ", 1)[0] if key else ""
    return head in v.heads or head in v.class_heads


def longest_drug_at(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """(canonical, j) for the longest drug name of up to 4 words in `words[i:j]` (lower-case tokens),
    or None when no drug name starts at `i`."""
    v = _vocabulary()
    return _longest_at(words, i, v.variants, v.heads, MAX_DRUG_WORDS, v.joined)


def drug_classes(canonical: str) -> list[str]:
    """Display names of the classes `canonical` belongs to ("Penicillins" for co-amoxiclav)."""
    return list(_vocabulary().drug_to_classes.get(canonical, ()))


def class_named(phrase: str) -> str | None:
    """The class a phrase names ("ACE-inhibitors", "penicillin", "beta blocker"), or None. "Penicillin"
    is both a drug and, in allergy talk, the class: this returns the class."""
    return _vocabulary().aliases.get(normalise(phrase))


def longest_class_at(words: Sequence[str], i: int) -> tuple[str, int] | None:
    """(class display name, j) for the longest class name in `words[i:j]`, or None."""
    v = _vocabulary()
    return _longest_at(words, i, v.aliases, v.class_heads, v.max_class_words)


def class_members(class_name: str) -> frozenset[str]:
    """Canonical drugs of a class, by display name (or any of its aliases); empty when unknown."""
    v = _vocabulary()
    if class_name not in v.classes:
        class_name = v.aliases.get(normalise(class_name), "")
    return v.classes.get(class_name, frozenset())


def lookalike_pairs() -> list[tuple[str, str]]:
    """Pairs of canonical drugs whose names look or sound alike (ISMP and NHS lists)."""
    return list(_vocabulary().lookalikes)


def all_canonical() -> frozenset[str]:
    """Every canonical drug name."""
    return _vocabulary().canonical
