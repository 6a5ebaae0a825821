"""What a mention is said about: negated, stopped, planned, hypothetical, family history, allergy.

NegEx-style: cue words before the mention in the same sentence (within a few words) and a few cue
words after it ("penicillin allergy", "metformin was stopped"). Deliberately plain rules: every cue is
listed here and each has a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from clarke_desktop.clinical_text.tokens import CLAUSE_END


class Status(StrEnum):
    CURRENT = "current"
    NEGATED = "negated"
    STOPPED = "stopped"
    PLANNED = "planned"
    HYPOTHETICAL = "hypothetical"
    FAMILY = "family"
    ALLERGY = "allergy"


NEGATION = frozenset({"no", "not", "denies", "denied", "deny", "without", "never", "nil", "none", "negative",
                      "doesn't", "don't", "didn't", "isn't", "wasn't", "hasn't", "haven't", "free", "nor",
                      "excluded", "ruled", "nkda", "nka", "non"})  # fmt: skip
FAMILY = frozenset({"mother", "father", "sister", "brother", "mum", "dad", "family", "grandmother", "grandfather",
                    "aunt", "uncle", "son", "daughter", "fh", "mother's", "father's", "parents", "sibling",
                    "siblings", "grandparents", "cousin", "husband", "wife", "partner"})  # fmt: skip
# Said as done (the patient's report); "stop the aspirin" is a plan, not a report.
STOPPED = frozenset({"stopped", "discontinued", "ceased", "off", "withdrawn", "quit"})
PLANNED = frozenset({"start", "starting", "started", "increase", "increasing", "increased", "reduce", "reducing",
                     "decrease", "decreasing", "switch", "switching", "change", "changing", "titrate", "add",
                     "adding", "prescribe", "prescribing", "prescribed", "commence", "commenced", "commencing",
                     "try", "trying", "new", "instead", "will", "going", "plan", "uptitrate", "recommend",
                     "recommended", "advised", "suggest", "give", "giving", "offer", "offered", "restart",
                     "trial", "course", "rx", "double", "halve", "wean", "taper", "up", "down", "stop", "stopping",
                     "discontinue", "replace", "replaces", "continue", "continuing", "carry", "keep"})  # fmt: skip
HYPOTHETICAL = frozenset({"if", "could", "would", "might", "may", "consider", "considering", "possible",
                          "possibly", "whether", "should", "unless", "avoid", "alternatively", "option",
                          "options", "?"})  # fmt: skip
ALLERGY = frozenset({"allergic", "allergy", "allergies", "intolerant", "intolerance"})
_REACTED = frozenset({"reaction", "reactions", "reacted", "sensitive", "sensitivity", "anaphylaxis"})
TAKING = frozenset({"taking", "take", "takes", "took", "using", "use", "uses", "on", "been", "prescribed",
                    "have", "having", "inhaler", "tablets", "medication", "medications", "meds", "dh",
                    "currently", "regular", "regularly"})  # fmt: skip
_WINDOW = 6


def preceding(words: Sequence[str], i: int, n: int = _WINDOW) -> list[str]:
    """Up to n words before index i in the same clause, nearest first."""
    out: list[str] = []
    j = i - 1
    while j >= 0 and len(out) < n and words[j] not in CLAUSE_END:
        if words[j] not in {",", "(", ")", "-"}:
            out.append(words[j])
        j -= 1
    return out


def following(words: Sequence[str], j: int, n: int = 3) -> list[str]:
    out: list[str] = []
    while j < len(words) and len(out) < n and words[j] not in CLAUSE_END:
        out.append(words[j])
        j += 1
    return out


def status_of(words: Sequence[str], i: int, j: int) -> Status:
    """The status of the mention words[i:j] from the cue words around it."""
    before = preceding(words, i)
    after = following(words, j)
    if any(w in ALLERGY for w in before[:4]) or (after and after[0] in ALLERGY):
        return Status.ALLERGY
    if len(before) > 1 and before[0] in {"to", "with"} and before[1] in _REACTED:  # "a reaction to codeine"
        return Status.ALLERGY
    if any(w in FAMILY for w in before):
        return Status.FAMILY
    if any(w in STOPPED for w in before[:4]) or (
        len(after) > 1 and after[0] in {"was", "is", "has", "been"} and after[1] in STOPPED | {"stopped"}
    ):
        return Status.STOPPED
    if "longer" in before[:3] and "no" in before[:4]:
        return Status.STOPPED
    if any(w in NEGATION for w in before[:4]):
        return Status.NEGATED
    if any(w in PLANNED for w in before[:4]) or (after and after[0] in {"to", "up", "down"}):
        return Status.PLANNED
    if any(w in HYPOTHETICAL for w in before):
        return Status.HYPOTHETICAL
    return Status.CURRENT
