"""Record-aware correction: ASR words that closely resemble a term in the patient's record.

A garbled drug name ("metforming") must not reach the letter unnoticed when the record lists
metformin. Words are compared with the record's drug, problem, allergy and clinician names (and any
extra terms) by edit distance and by sound (Metaphone); a close match replaces the word in the
working transcript and both forms are kept in `Transcript.corrections`.

Safety rules, because a correction that introduces a wrong drug is a hazard:
- a word that is itself a known drug, diagnosis or medical term is never rewritten; when it looks
  or sounds like a different record term (escitalopram heard, citalopram recorded) it is raised as a
  `SoundAlikeFlag` with both names for the clinician to confirm;
- a garbled word that is as close to another known drug as to the record term is flagged, not
  corrected (no guessing between gliclazide and glipizide);
- only record or given terms are ever written; common English words are never changed; two equally
  good record candidates mean no correction;
- a name split by the recogniser ("met for min", "a tor va statin") is rejoined only when the joined
  letters are exactly a record term or a known drug.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import jellyfish
from rapidfuzz import fuzz, process

from clarke_desktop.clinical_text import vocabulary
from clarke_desktop.clinical_text.lexicon import medical_words
from clarke_desktop.clinical_text.spans import word_char_offsets
from clarke_desktop.schemas import Correction, PatientContext, SoundAlikeFlag, SourceRef, Transcript, Word

MIN_LENGTH = 4  # shorter words are too ambiguous to correct
MIN_EDIT_SCORE = 70.0  # rapidfuzz ratio floor (0-100)
MIN_SCORE = 82.0  # combined edit + sound score needed to correct
FLAG_SCORE = 75.0  # a known term this close to a different record term is flagged
AMBIGUITY_MARGIN = 2.0  # a runner-up this close to the best means "do not guess"
MAX_SPLIT = 4  # words a split name may have been cut into
# Words in drug and problem names that are not names themselves.
_NOT_NAMES = {
    "tablet", "tablets", "capsule", "capsules", "modified", "release", "oral", "solution", "suspension",
    "injection", "inhaler", "cream", "ointment", "drops", "patch", "patches", "dose", "doses", "daily",
    "once", "twice", "with", "without", "and", "disorder", "disease", "syndrome", "type", "history",
    "finding", "situation", "procedure", "left", "right", "acute", "chronic", "mild", "severe", "unspecified",
    "sodium", "hydrochloride", "potassium", "calcium",
}  # fmt: skip
_TITLES = {"dr", "mr", "mrs", "ms", "miss", "prof", "professor", "sir", "dame", "nurse"}
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]")


@dataclass(frozen=True)
class Term:
    """One correctable word (or multi-word term) and where it came from."""

    text: str
    kind: str  # medication | problem | allergy | clinician | given
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


def given_terms(texts: Iterable[str]) -> list[Term]:
    """Extra vocabulary (a multi-word term stays one term)."""
    return [Term(t.strip(), "given") for t in texts if len(_normalise(t)) >= MIN_LENGTH]


def is_known_term(word: str) -> bool:
    """A drug, diagnosis or medical term: a word that must never be rewritten."""
    key = word.lower().strip("'-")
    return vocabulary.is_drug(key) or key in medical_words() or vocabulary.class_named(key) is not None


def _similarity(word: str, term: str) -> tuple[float, float]:
    """(combined score, edit score), both 0-100."""
    edit = fuzz.ratio(word, term)
    sound = 100.0 * jellyfish.jaro_winkler_similarity(jellyfish.metaphone(word), jellyfish.metaphone(term))
    return 0.6 * edit + 0.4 * sound, edit


def _scored(key: str, vocabulary_terms: Sequence[Term], floor: float) -> list[tuple[float, Term]]:
    scored = []
    for term in vocabulary_terms:
        if abs(len(term.key) - len(key)) > max(2, len(term.key) // 3):
            continue
        score, edit = _similarity(key, term.key)
        if edit >= MIN_EDIT_SCORE and score >= floor:
            scored.append((score, term))
    return sorted(scored, key=lambda item: -item[0])


@cache
def _drug_names() -> tuple[str, ...]:
    return tuple(sorted(vocabulary.all_canonical()))


def _rival_drug(key: str, best: Term, best_score: float) -> str | None:
    """A known drug, other than the record term, that the heard word is at least as close to."""
    best_drug = vocabulary.canonical_drug(best.text)
    for name, _score, _ in process.extract(
        key, _drug_names(), scorer=fuzz.ratio, score_cutoff=MIN_EDIT_SCORE, limit=5
    ):
        if _normalise(name) == best.key or name == best_drug:
            continue
        score, _edit = _similarity(key, _normalise(name))
        if score >= best_score - AMBIGUITY_MARGIN:
            return name
    return None


@dataclass(frozen=True)
class Decision:
    """What to do with a heard word: correct it to `term`, or flag it with `candidates`."""

    term: Term | None
    score: float
    candidates: tuple[str, ...] = ()


def decide(word: str, vocabulary_terms: Sequence[Term]) -> Decision | None:
    key = _normalise(word)
    if len(key) < MIN_LENGTH or key in common_english():
        return None
    if any(term.key == key for term in vocabulary_terms):
        return None  # already a record word
    if is_known_term(word):
        alike = [t for s, t in _scored(key, vocabulary_terms, FLAG_SCORE) if t.kind != "clinician"]
        names = tuple(dict.fromkeys(t.text for t in alike))
        return Decision(None, 0.0, names) if names else None
    scored = _scored(key, vocabulary_terms, MIN_SCORE)
    if not scored:
        return None
    best_score, best = scored[0]
    if any(best_score - s < AMBIGUITY_MARGIN and t.key != best.key for s, t in scored[1:]):
        return None
    rival = _rival_drug(key, best, best_score) if best.kind != "clinician" else None
    if rival:
        return Decision(None, 0.0, (best.text, rival))
    return Decision(best, round(best_score, 1))


def best_match(word: str, vocabulary_terms: Sequence[Term]) -> tuple[Term, float] | None:
    """The record term `word` should become, or None (too short, common, known, weak or ambiguous)."""
    found = decide(word, vocabulary_terms)
    return (found.term, found.score) if found and found.term else None


@dataclass(frozen=True)
class Edit:
    start: int  # char offsets in the text
    end: int
    heard: str
    corrected: str | None  # None: a flag
    score: float = 0.0
    source: SourceRef | None = None
    candidates: tuple[str, ...] = ()


def _split_edit(
    text: str, spans: list[re.Match[str]], i: int, by_key: dict[str, Term]
) -> tuple[Edit, int] | None:
    """A name cut into 2-4 words, rejoined when the letters are exactly a record term or known drug."""
    for n in range(min(MAX_SPLIT, len(spans) - i), 1, -1):
        group = spans[i : i + n]
        gaps = [text[a.end() : b.start()] for a, b in zip(group, group[1:], strict=False)]
        if any(g not in {" ", "-"} for g in gaps):
            continue
        joined = "".join(_normalise(m.group()) for m in group)
        if len(joined) < 6:
            continue
        heard = text[group[0].start() : group[-1].end()]
        if is_known_term(heard) or vocabulary.canonical_drug(heard.replace("-", " ")):
            continue  # a real multi-word name ("co amoxiclav" is handled as a drug already)
        term = by_key.get(joined)
        if term is not None:
            return Edit(group[0].start(), group[-1].end(), heard, term.text, 100.0, term.source), n
        drug = vocabulary.canonical_drug(joined)
        if drug is not None and _normalise(drug) == joined:
            return Edit(group[0].start(), group[-1].end(), heard, drug, 100.0), n
    return None


def plan_edits(text: str, terms: Sequence[Term]) -> list[Edit]:
    """The corrections and flags for `text`, in order, with char offsets into it."""
    spans = list(_WORD_RE.finditer(text))
    by_key = {t.key: t for t in terms}
    edits: list[Edit] = []
    i = 0
    while i < len(spans):
        split = _split_edit(text, spans, i, by_key)
        if split:
            edits.append(split[0])
            i += split[1]
            continue
        m = spans[i]
        decision = decide(m.group(), terms) if terms else None
        if decision is not None:
            if decision.term is not None:
                t = decision.term
                edits.append(Edit(m.start(), m.end(), m.group(), t.text, decision.score, t.source))
            else:
                edits.append(Edit(m.start(), m.end(), m.group(), None, candidates=decision.candidates))
        i += 1
    return edits


def correct_transcript(transcript: Transcript, vocabulary_terms: Sequence[Term]) -> Transcript:
    """A copy of `transcript` with record-resembling words corrected, look-alikes flagged, and both
    forms of every correction recorded."""
    edits = plan_edits(transcript.text, vocabulary_terms)
    corrections = list(transcript.corrections)
    flags = list(transcript.sound_alike_flags)
    offsets = word_char_offsets(transcript) if transcript.words else []

    def times(start: int, end: int) -> tuple[float | None, float | None]:
        hit = [
            w for w, (s, e) in zip(transcript.words, offsets, strict=True) if s >= 0 and s < end and e > start
        ]
        return (hit[0].start_s, hit[-1].end_s) if hit else (None, None)

    pieces, last = [], 0
    for edit in edits:
        start_s, end_s = times(edit.start, edit.end)
        if edit.corrected is None:
            flags.append(SoundAlikeFlag(heard=edit.heard, candidates=list(edit.candidates), start_s=start_s,
                                        end_s=end_s, char_start=edit.start, char_end=edit.end))  # fmt: skip
            continue
        pieces += [transcript.text[last : edit.start], edit.corrected]
        last = edit.end
        corrections.append(Correction(original=edit.heard, corrected=edit.corrected, start_s=start_s, end_s=end_s,
                                      score=edit.score, source=edit.source, char_start=edit.start,
                                      char_end=edit.end))  # fmt: skip
    pieces.append(transcript.text[last:])
    update: dict[str, object] = {
        "text": "".join(pieces),
        "corrections": corrections,
        "sound_alike_flags": flags,
    }
    if transcript.words:
        update["words"] = _corrected_words(transcript.words, offsets, [e for e in edits if e.corrected])
    return transcript.model_copy(deep=True, update=update)


def _corrected_words(words: list[Word], offsets: list[tuple[int, int]], edits: list[Edit]) -> list[Word]:
    """The word list with each corrected stretch replaced (a rejoined name becomes one word that
    spans the times of its pieces; punctuation attached to the word is kept)."""
    out: list[Word] = []
    k = 0
    for edit in edits:
        while k < len(words) and not (offsets[k][0] >= 0 and offsets[k][1] > edit.start):
            out.append(words[k].model_copy())
            k += 1
        covered = []
        while k < len(words) and offsets[k][0] >= 0 and offsets[k][0] < edit.end:
            covered.append((words[k], offsets[k]))
            k += 1
        if not covered:
            continue
        first_word, (first_start, _) = covered[0]
        last_word, (_, last_end) = covered[-1]
        lead = first_word.text[: max(0, edit.start - first_start)]
        trail = (
            last_word.text[len(last_word.text) - max(0, last_end - edit.end) :] if last_end > edit.end else ""
        )
        out.append(
            first_word.model_copy(update={"text": f"{lead}{edit.corrected}{trail}", "end_s": last_word.end_s})
        )
    out.extend(w.model_copy() for w in words[k:])
    return out


__all__ = ["Term", "best_match", "correct_transcript", "decide", "given_terms", "is_known_term",
           "plan_edits", "vocabulary_from_context"]  # fmt: skip
