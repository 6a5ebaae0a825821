"""Record-aware correction: ASR words that closely resemble a term in the patient's record.

A garbled drug name ("gliplizide") must not reach the letter unnoticed when the record lists
gliclazide. Words are compared with the record's drug, problem, allergy and clinician names by
edit distance and by sound (Metaphone); a close match replaces the word in the working transcript
and both forms are kept in `Transcript.corrections`, with the record entry it came from.

Safety rules: only words from the record are ever written; a common English word is never
changed; a word already equal to a record term is left alone; two equally good candidates mean
no correction (no guessing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jellyfish
from rapidfuzz import fuzz

from clarke_desktop.schemas import Correction, PatientContext, SourceRef, Transcript, Word

MIN_LENGTH = 4  # shorter words are too ambiguous to correct
MIN_EDIT_SCORE = 70.0  # rapidfuzz ratio floor (0-100)
MIN_SCORE = 82.0  # combined edit + sound score needed to correct
AMBIGUITY_MARGIN = 2.0  # a runner-up this close to the best means "do not guess"
# Words in drug and problem names that are not names themselves.
_NOT_NAMES = {
    "tablet", "tablets", "capsule", "capsules", "modified", "release", "oral", "solution", "suspension",
    "injection", "inhaler", "cream", "ointment", "drops", "patch", "patches", "dose", "doses", "daily",
    "once", "twice", "with", "without", "and", "disorder", "disease", "syndrome", "type", "history",
    "finding", "situation", "procedure", "left", "right", "acute", "chronic", "mild", "severe", "unspecified",
}  # fmt: skip
_TITLES = {"dr", "mr", "mrs", "ms", "miss", "prof", "professor", "sir", "dame", "nurse"}
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")


@dataclass(frozen=True)
class Term:
    """One correctable word from the record (as written there) and where it came from."""

    text: str
    kind: str  # medication | problem | allergy | clinician
    source: SourceRef | None = None

    @property
    def key(self) -> str:
        return _normalise(self.text)


@cache
def common_english() -> frozenset[str]:
    text = resources.files("clarke_desktop.asr").joinpath("data/common_english.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def _normalise(word: str) -> str:
    return re.sub(r"[^a-z]", "", word.lower())


def _name_words(text: str, *, drop: set[str]) -> list[str]:
    return [w for w in _WORD_RE.findall(text) if len(_normalise(w)) >= MIN_LENGTH and w.lower() not in drop]


def vocabulary_from_context(ctx: PatientContext, clinicians: Iterable[str] = ()) -> list[Term]:
    """Correctable terms from the record: drug, problem and allergy names, clinician names."""
    terms: dict[tuple[str, str], Term] = {}

    def add(text: str | None, kind: str, source: SourceRef | None, drop: set[str]) -> None:
        for word in _name_words(text or "", drop=drop):
            terms.setdefault((_normalise(word), kind), Term(word, kind, source))

    for med in ctx.medications:
        add(med.name, "medication", med.source, _NOT_NAMES)
    for allergy in ctx.allergies:
        add(allergy.substance, "allergy", allergy.source, _NOT_NAMES)
    for problem in ctx.problem_list:
        add(problem.name, "problem", problem.source, _NOT_NAMES)
    add(ctx.demographics.gp_name, "clinician", ctx.demographics.source, _TITLES)
    for name in clinicians:
        add(name, "clinician", None, _TITLES)
    return list(terms.values())


def _similarity(word: str, term: str) -> tuple[float, float]:
    """(combined score, edit score), both 0-100."""
    edit = fuzz.ratio(word, term)
    sound = 100.0 * jellyfish.jaro_winkler_similarity(jellyfish.metaphone(word), jellyfish.metaphone(term))
    return 0.6 * edit + 0.4 * sound, edit


def best_match(word: str, vocabulary: Sequence[Term]) -> tuple[Term, float] | None:
    """The record term `word` should become, or None (too short, common, exact, weak or ambiguous)."""
    key = _normalise(word)
    if len(key) < MIN_LENGTH or key in common_english():
        return None
    if any(term.key == key for term in vocabulary):
        return None  # already a record word
    scored = []
    for term in vocabulary:
        if abs(len(term.key) - len(key)) > max(2, len(term.key) // 3):
            continue
        score, edit = _similarity(key, term.key)
        if edit >= MIN_EDIT_SCORE and score >= MIN_SCORE:
            scored.append((score, term))
    if not scored:
        return None
    scored.sort(key=lambda item: -item[0])
    best_score, best = scored[0]
    rivals = [t for s, t in scored[1:] if best_score - s < AMBIGUITY_MARGIN and t.key != best.key]
    if rivals:
        return None
    return best, round(best_score, 1)


def _split_punctuation(token: str) -> tuple[str, str, str]:
    match = re.fullmatch(r"([^A-Za-z]*)(.*?)([^A-Za-z]*)", token)
    assert match is not None
    return match.group(1), match.group(2), match.group(3)


def correct_transcript(transcript: Transcript, vocabulary: Sequence[Term]) -> Transcript:
    """A copy of `transcript` with record-resembling words corrected and the corrections recorded."""
    if not vocabulary:
        return transcript.model_copy(deep=True)
    corrections = list(transcript.corrections)
    if transcript.words:
        words: list[Word] = []
        for word in transcript.words:
            lead, core, trail = _split_punctuation(word.text)
            match = best_match(core, vocabulary) if core else None
            if match is None:
                words.append(word.model_copy())
                continue
            term, score = match
            words.append(word.model_copy(update={"text": f"{lead}{term.text}{trail}"}))
            corrections.append(
                Correction(
                    original=core,
                    corrected=term.text,
                    start_s=word.start_s,
                    end_s=word.end_s,
                    score=score,
                    source=term.source,
                )
            )
        text = " ".join(w.text for w in words)
        return transcript.model_copy(update={"words": words, "text": text, "corrections": corrections})
    # Typed or imported text has no timings: correct in place, keeping the rest of the text as is.
    pieces, last = [], 0
    for found in _WORD_RE.finditer(transcript.text):
        match = best_match(found.group(), vocabulary)
        if match is None:
            continue
        term, score = match
        pieces += [transcript.text[last : found.start()], term.text]
        last = found.end()
        corrections.append(
            Correction(original=found.group(), corrected=term.text, score=score, source=term.source)
        )
    pieces.append(transcript.text[last:])
    return transcript.model_copy(update={"text": "".join(pieces), "corrections": corrections})
