"""Record-aware correction of ASR words against the patient's record."""

from __future__ import annotations

from clarke_desktop.asr.correction import Term, best_match, correct_transcript, vocabulary_from_context
from clarke_desktop.schemas import (
    Allergy,
    Demographics,
    Medication,
    PatientContext,
    Problem,
    SourceRef,
    Transcript,
    Word,
)

GLICLAZIDE = SourceRef(resource_type="MedicationRequest", id="med-1", version_id="2")
WARFARIN = SourceRef(resource_type="MedicationRequest", id="med-2")


def context() -> PatientContext:
    return PatientContext(
        patient_id="pt-001",
        demographics=Demographics(
            name="Mrs Jane Doe",
            date_of_birth="1958-03-14",
            gp_name="Dr Anita Sharma",
            source=SourceRef(resource_type="Patient", id="pt-001"),
        ),
        medications=[
            Medication(name="Gliclazide 80mg tablets", dose="80 mg", source=GLICLAZIDE),
            Medication(name="Warfarin sodium 3mg tablets", source=WARFARIN),
            Medication(
                name="Metformin 500mg modified-release tablets",
                source=SourceRef(resource_type="MedicationRequest", id="med-3"),
            ),
        ],
        problem_list=[
            Problem(name="Type 2 diabetes mellitus", source=SourceRef(resource_type="Condition", id="c-1"))
        ],
        allergies=[
            Allergy(substance="Penicillin", source=SourceRef(resource_type="AllergyIntolerance", id="a-1"))
        ],
    )


def transcript(*words: str) -> Transcript:
    ws = [Word(text=w, start_s=i * 0.5, end_s=i * 0.5 + 0.4, confidence=0.6) for i, w in enumerate(words)]
    return Transcript(text=" ".join(words), words=ws, provider="CPUExecutionProvider")


def test_vocabulary_holds_record_names_with_their_sources():
    terms = {t.text: t for t in vocabulary_from_context(context(), clinicians=["Dr Owen Price"])}
    assert {
        "Gliclazide",
        "Warfarin",
        "Metformin",
        "Penicillin",
        "diabetes",
        "mellitus",
        "Sharma",
        "Price",
    } <= set(terms)
    assert terms["Gliclazide"].source == GLICLAZIDE and terms["Gliclazide"].kind == "medication"
    assert not {"tablets", "modified", "Type", "80mg", "Dr"} & set(terms)


def test_garbled_drug_name_is_corrected_and_both_forms_are_kept():
    vocab = vocabulary_from_context(context())
    result = correct_transcript(transcript("continue", "metforming,", "five", "hundred"), vocab)
    assert result.text == "continue Metformin, five hundred"
    assert result.words[1].text == "Metformin,"
    assert (result.words[1].start_s, result.words[1].end_s) == (0.5, 0.9)
    [fix] = result.corrections
    assert (fix.original, fix.corrected) == ("metforming", "Metformin")
    assert (fix.start_s, fix.end_s) == (0.5, 0.9) and fix.score >= 82
    assert (fix.char_start, fix.char_end) == (9, 19)
    assert result.provider == "CPUExecutionProvider"


def test_a_garbled_word_as_close_to_another_real_drug_is_flagged_not_guessed():
    # "gliplizide" is nearer glipizide (a real drug, not on the record) than the recorded gliclazide.
    vocab = vocabulary_from_context(context())
    result = correct_transcript(transcript("continue", "gliplizide,", "eighty", "milligrams"), vocab)
    assert result.text == "continue gliplizide, eighty milligrams" and result.corrections == []
    [flag] = result.sound_alike_flags
    assert flag.heard == "gliplizide" and flag.candidates == ["Gliclazide", "glipizide"]
    assert (flag.start_s, flag.end_s) == (0.5, 0.9)


def test_a_correctly_spoken_lookalike_drug_is_never_rewritten_but_flagged():
    vocab = [Term("citalopram", "medication"), Term("dexamethasone", "medication"), Term("hypothyroidism", "problem")]
    text = "She takes escitalopram and betamethasone cream; known hyperthyroidism."
    result = correct_transcript(Transcript(text=text, origin="typed"), vocab)
    assert result.text == text and result.corrections == []
    assert [(f.heard, f.candidates) for f in result.sound_alike_flags] == [
        ("escitalopram", ["citalopram"]),
        ("betamethasone", ["dexamethasone"]),
        ("hyperthyroidism", ["hypothyroidism"]),
    ]
    assert all(text[f.char_start : f.char_end] == f.heard for f in result.sound_alike_flags)


def test_lookalike_pairs_from_the_vocabulary_are_never_rewritten():
    from clarke_desktop.clinical_text.vocabulary import lookalike_pairs

    for a, b in lookalike_pairs():
        for said, recorded in ((a, b), (b, a)):
            text = f"on {said} daily"
            result = correct_transcript(Transcript(text=text, origin="typed"), [Term(recorded, "medication")])
            assert result.text == text, (said, recorded)


def test_split_names_are_rejoined_with_both_forms_kept():
    vocab = vocabulary_from_context(context())
    typed = Transcript(text="She is on met for min and a tor va statin.", origin="typed")
    result = correct_transcript(typed, vocab)
    assert result.text == "She is on Metformin and atorvastatin."
    assert [(c.original, c.corrected, c.char_start, c.char_end) for c in result.corrections] == [
        ("met for min", "Metformin", 10, 21),
        ("a tor va statin", "atorvastatin", 26, 41),
    ]
    timed = correct_transcript(transcript("on", "met", "for", "min", "daily"), vocab)
    assert [w.text for w in timed.words] == ["on", "Metformin", "daily"]
    assert (timed.words[1].start_s, timed.words[1].end_s) == (0.5, 1.9)


def test_ordinary_word_pairs_are_not_joined_into_a_drug():
    vocab = vocabulary_from_context(context())
    text = "I met him for a minute at the war fair in town."
    assert correct_transcript(Transcript(text=text, origin="typed"), vocab).text == text


def test_the_input_transcript_is_not_modified():
    original = transcript("on", "metforming")
    correct_transcript(original, vocabulary_from_context(context()))
    assert original.text == "on metforming" and original.corrections == []


def test_common_english_words_are_never_corrected():
    vocab = vocabulary_from_context(context())
    assert best_match("warfare", vocab) is None  # common word, though close to Warfarin
    result = correct_transcript(transcript("the", "patient", "feels", "fine", "warfare"), vocab)
    assert result.text == "the patient feels fine warfare" and result.corrections == []


def test_words_absent_from_the_record_are_not_invented():
    vocab = vocabulary_from_context(context())
    result = correct_transcript(transcript("started", "amlodipin", "and", "ramapril"), vocab)
    assert result.text == "started amlodipin and ramapril"
    assert all(c.corrected in {t.text for t in vocab} for c in result.corrections)


def test_record_words_and_short_words_are_left_alone():
    vocab = vocabulary_from_context(context())
    assert best_match("Metformin", vocab) is None
    assert best_match("glic", vocab) is None


def test_ambiguous_candidates_mean_no_correction():
    vocab = [Term("Patil", "clinician"), Term("Patel", "clinician")]
    assert best_match("Patol", vocab) is None
    assert best_match("Patill", vocab) == (vocab[0], best_match("Patill", vocab)[1])


def test_typed_text_is_corrected_in_place():
    typed = Transcript(text="Allergic to penicilin; on metforming.", origin="typed")
    result = correct_transcript(typed, vocabulary_from_context(context()))
    assert result.text == "Allergic to Penicillin; on Metformin."
    assert [(c.original, c.corrected) for c in result.corrections] == [
        ("penicilin", "Penicillin"),
        ("metforming", "Metformin"),
    ]
    assert all(c.start_s is None for c in result.corrections)
