"""Pipeline orchestration and the degradation tiers (blueprint §10).

The agent, letter writer and audio loader are the real ones; the model is the project's
ScriptedEngine and the record/ASR are replaced only where a test needs them to fail or to be
absent: these tests are about the logic around those parts.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import workflow_samples as samples

from clarke_desktop.agent.context import build_context
from clarke_desktop.asr.base import AsrModelMissing
from clarke_desktop.audio.files import load_audio
from clarke_desktop.cancel import Cancelled, CancelToken
from clarke_desktop.fhir.client import FhirUnavailable
from clarke_desktop.letters.writer import draft_letter
from clarke_desktop.llm.base import ModelMissing, ModelOutOfMemory
from clarke_desktop.pipeline import (
    Components,
    ConsultationPipeline,
    ConsultationRequest,
    PipelineError,
    StagePolicy,
    TranscriptRequired,
)
from clarke_desktop.pipeline.errors import StageTimeout
from clarke_desktop.pipeline.run import EHR_UNAVAILABLE
from clarke_desktop.schemas import ConsultationStatus, PipelineStage, Transcript
from clarke_desktop.store import AppStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scripted_engine import ScriptedEngine  # noqa: E402

NARRATIVE = "Mrs Thompson was reviewed in clinic today and the plan was discussed with her."
FAST = {
    "context": StagePolicy(
        timeout_s=30, retries=2, backoff_s=(0.0,), retry_on=(FhirUnavailable, StageTimeout)
    ),
    "letter": StagePolicy(timeout_s=30, retries=1, retry_on=(ModelOutOfMemory, StageTimeout)),
}


class DeadFhir:
    """A FHIR client whose server has gone away: every call fails as unavailable."""

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise FhirUnavailable("connection refused")

        return fail

    def close(self) -> None:
        pass


class Parts:
    """Counts what the pipeline asked for, so tests can check what was (not) used."""

    def __init__(self) -> None:
        self.engines: dict[tuple[str, int], ScriptedEngine] = {}
        self.fhir_calls = 0
        self.transcriber_calls = 0
        self.missing_roles: set[str] = set()
        self.replies: dict[tuple[str, int], list] = {}

    def engine(self, role: str, attempt: int) -> ScriptedEngine:
        if role in self.missing_roles:
            raise ModelMissing(f"no {role} model pack installed")
        engine = ScriptedEngine(
            list(self.replies.get((role, attempt), [])), default=NARRATIVE, demo=role == "embedded", name=role
        )
        self.engines[(role, attempt)] = engine
        return engine

    def fhir(self):
        self.fhir_calls += 1
        return DeadFhir()  # never read: these tests supply the context directly

    def components(self, **overrides) -> Components:
        def context(client, patient_id, *, engine, cancel):
            return samples.context()

        def transcriber():
            self.transcriber_calls += 1
            raise AssertionError("the transcriber should not be needed")

        base = dict(
            fhir=self.fhir,
            transcriber=transcriber,
            engine=self.engine,
            build_context=context,
            write_letter=draft_letter,
            load_audio=load_audio,
        )
        base.update(overrides)
        return Components(**base)


@pytest.fixture
def parts() -> Parts:
    p = Parts()
    p.missing_roles.add("ehr_agent")
    return p


def _request(store: AppStore, transcript: Transcript | None = None, **kw) -> ConsultationRequest:
    cid = store.create_consultation("pt-001", clinician="Dr S. Chen").id
    if transcript is None and "audio_path" not in kw:
        transcript = samples.transcript()
    return ConsultationRequest(cid, "pt-001", transcript=transcript, letter_date="2026-02-13", **kw)


def test_typed_transcript_runs_all_stages_and_persists(store: AppStore, parts: Parts) -> None:
    events = []
    sections = []
    pipeline = ConsultationPipeline(parts.components(), store=store, policies=FAST)
    request = _request(store)
    result = pipeline.run(request, on_progress=events.append, on_section=sections.append)
    stages = [e.stage for e in events]
    assert stages[0] == PipelineStage.TRANSCRIBING and stages[-1] == PipelineStage.COMPLETE
    assert stages.index(PipelineStage.RETRIEVING_CONTEXT) < stages.index(PipelineStage.GENERATING_DOCUMENT)
    pcts = [e.progress_pct for e in events]
    assert pcts == sorted(pcts) and pcts[-1] == 100
    assert set(result.timings) == {"transcribe", "context", "letter", "save"}
    assert result.inference_s["letter_writer"] > 0
    assert any(getattr(s, "kind", "") == "section_done" for s in sections)
    assert NARRATIVE in " ".join(s.content for s in result.document.sections)
    assert result.letter_version == 1 and store.latest_letter(request.consultation_id).kind == "generated"
    assert store.consultation(request.consultation_id).status == ConsultationStatus.REVIEW
    assert store.latest_transcript(request.consultation_id).text == samples.TRANSCRIPT_TEXT
    events_logged = [e.event for e in store.audit_entries(request.consultation_id)]
    assert events_logged[-3:] == ["transcript_produced", "context_retrieved", "letter_generated"]
    # EHR model missing is tier 2: the context loses only its model-written flags.
    assert any("EHR model could not be loaded" in w for w in result.warnings)
    assert parts.transcriber_calls == 0


def test_live_transcript_is_used_without_loading_asr(store: AppStore, parts: Parts) -> None:
    live = Transcript(text=samples.TRANSCRIPT_TEXT, origin="asr", model="medasr", duration_s=60)
    pipeline = ConsultationPipeline(parts.components(), store=store, policies=FAST)
    events = []
    result = pipeline.run(_request(store, live), on_progress=events.append)
    assert parts.transcriber_calls == 0
    assert result.transcript.model == "medasr"
    assert "live recording" in events[0].message


def test_fhir_unavailable_letter_from_transcript_with_warning(store: AppStore, parts: Parts) -> None:
    def down():
        parts.fhir_calls += 1
        raise FhirUnavailable("local FHIR store is locked")

    pipeline = ConsultationPipeline(parts.components(fhir=down), store=store, policies=FAST)
    request = _request(store)
    result = pipeline.run(request)
    assert parts.fhir_calls == 3  # first try + the two retries of the blueprint
    assert result.attempts["context"] == 3
    assert "ehr_unavailable" in result.degraded
    assert EHR_UNAVAILABLE in result.warnings and EHR_UNAVAILABLE in result.document.warnings
    assert result.context.problem_list == [] and result.document.sections
    assert store.latest_context(request.consultation_id).retrieval_warnings


def test_fhir_server_gone_mid_session_is_the_same_tier(store: AppStore, parts: Parts) -> None:
    """The client opens but every read fails: the real agent warns, the pipeline flags the tier."""
    pipeline = ConsultationPipeline(
        parts.components(fhir=DeadFhir, build_context=build_context), store=store, policies=FAST
    )
    result = pipeline.run(_request(store))
    assert "ehr_unavailable" in result.degraded
    assert EHR_UNAVAILABLE in result.warnings


def test_asr_missing_asks_for_a_typed_transcript(store: AppStore, parts: Parts, tmp_path: Path) -> None:
    wav = tmp_path / "visit.wav"
    sf.write(wav, (0.1 * np.sin(np.arange(16000 * 2) / 5)).astype(np.float32), 16000)

    def missing():
        raise AsrModelMissing("No speech model (MedASR) is installed.")

    pipeline = ConsultationPipeline(parts.components(transcriber=missing), store=store, policies=FAST)
    request = _request(store, audio_path=wav)
    with pytest.raises(TranscriptRequired, match="Type or paste the transcript"):
        pipeline.run(request)
    assert store.consultation(request.consultation_id).status == ConsultationStatus.WAITING
    assert store.audit_entries(request.consultation_id)[-1].data["error"] == "TranscriptRequired"
    # The typed path then completes the same consultation.
    request.transcript = samples.transcript()
    assert pipeline.run(request).letter_version == 1


def test_corrupted_audio_is_a_clear_error_naming_the_file(
    store: AppStore, parts: Parts, tmp_path: Path
) -> None:
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 40)
    pipeline = ConsultationPipeline(parts.components(), store=store, policies=FAST)
    events = []
    with pytest.raises(PipelineError) as info:
        pipeline.run(_request(store, audio_path=bad), on_progress=events.append)
    assert info.value.kind == "audio_error"
    assert "corrupt.wav" in info.value.message and "Re-record" in info.value.message
    assert events[-1].stage == PipelineStage.FAILED
    assert info.value.response().error == "audio_error"
    assert parts.transcriber_calls == 0


def test_letter_model_missing_uses_embedded_default_flagged(store: AppStore, parts: Parts) -> None:
    parts.missing_roles.add("letter_writer")
    pipeline = ConsultationPipeline(parts.components(), store=store, policies=FAST)
    result = pipeline.run(_request(store))
    assert ("embedded", 0) in parts.engines
    assert {"letter_model_missing", "demo_model"} <= set(result.degraded)
    assert result.document.model.demo
    assert any("not installed" in w for w in result.warnings)
    assert any("demo model" in w.lower() for w in result.document.warnings)


def test_out_of_memory_retries_with_smaller_settings(store: AppStore, parts: Parts) -> None:
    parts.replies[("letter_writer", 0)] = [ModelOutOfMemory("CUDA out of memory")]
    pipeline = ConsultationPipeline(parts.components(), store=store, policies=FAST)
    result = pipeline.run(_request(store))
    assert result.attempts["letter"] == 2 and "reduced_settings" in result.degraded
    retry_calls = parts.engines[("letter_writer", 1)].calls
    assert retry_calls and all(c.get("max_tokens", 0) <= 256 for c in retry_calls)


def test_out_of_memory_twice_is_a_clear_error(store: AppStore, parts: Parts) -> None:
    parts.replies[("letter_writer", 0)] = [ModelOutOfMemory("CUDA out of memory")]
    parts.replies[("letter_writer", 1)] = [ModelOutOfMemory("CUDA out of memory")]
    pipeline = ConsultationPipeline(parts.components(), store=store, policies=FAST)
    request = _request(store)
    with pytest.raises(PipelineError, match="ran out of memory") as info:
        pipeline.run(request)
    assert info.value.kind == "model_error" and "CUDA" in info.value.detail
    assert store.latest_transcript(request.consultation_id) is not None  # work so far is kept
    assert store.audit_entries(request.consultation_id)[-1].event == "pipeline_failed"


def test_stage_deadline_cancels_the_worker_and_retries(store: AppStore, parts: Parts) -> None:
    stopped = []

    def hanging_writer(**kwargs):
        token: CancelToken = kwargs["cancel"]
        while not token.cancelled:
            threading.Event().wait(0.01)
        stopped.append(True)
        raise Cancelled()

    policies = {**FAST, "letter": StagePolicy(timeout_s=0.3, retries=1, retry_on=(StageTimeout,))}
    pipeline = ConsultationPipeline(
        parts.components(write_letter=hanging_writer), store=store, policies=policies
    )
    with pytest.raises(PipelineError) as info:
        pipeline.run(_request(store))
    assert info.value.kind == "timeout"
    assert stopped == [True, True]  # both attempts were told to stop and did


def test_cancel_from_the_caller_stops_the_run(store: AppStore, parts: Parts) -> None:
    cancel = CancelToken()

    def on_progress(event):
        if event.stage == PipelineStage.GENERATING_DOCUMENT:
            cancel.cancel()

    pipeline = ConsultationPipeline(parts.components(), store=store, policies=FAST)
    request = _request(store)
    with pytest.raises(Cancelled):
        pipeline.run(request, on_progress=on_progress, cancel=cancel)
    assert store.latest_letter(request.consultation_id) is None
    assert store.audit_entries(request.consultation_id)[-1].data["error"] == "Cancelled"


def test_slow_ehr_model_keeps_the_record_context(store: AppStore, parts: Parts) -> None:
    """Blueprint §10a: a slow EHR model falls back to the deterministic context, not 'EHR unavailable'."""
    parts.missing_roles.discard("ehr_agent")
    judged = []

    def slow_judge(context, engine, *, cancel):
        while not cancel.cancelled:
            threading.Event().wait(0.01)
        judged.append("stopped")
        raise Cancelled()

    policies = {**FAST, "context_model": StagePolicy(timeout_s=0.2, retries=0, retry_on=(StageTimeout,))}
    pipeline = ConsultationPipeline(
        parts.components(judge_context=slow_judge), store=store, policies=policies
    )
    result = pipeline.run(_request(store))
    assert judged == ["stopped"]
    assert "ehr_unavailable" not in result.degraded and result.context.medications
    assert any("EHR model took too long" in w for w in result.warnings)
    assert "context_model" in result.timings


def test_ehr_model_flags_are_added_after_retrieval(store: AppStore, parts: Parts) -> None:
    parts.missing_roles.discard("ehr_agent")

    def judge(context, engine, *, cancel):
        assert engine.info.name == "ehr_agent"
        return context.model_copy(update={"clinical_flags": ["HbA1c rising on metformin"]})

    pipeline = ConsultationPipeline(parts.components(judge_context=judge), store=store, policies=FAST)
    result = pipeline.run(_request(store))
    assert result.context.clinical_flags == ["HbA1c rising on metformin"]
    assert store.latest_context(result.consultation_id).clinical_flags == ["HbA1c rising on metformin"]


def test_recognised_speech_is_corrected_against_the_record_and_every_change_is_put_to_review(
    store: AppStore, parts: Parts
) -> None:
    # The sample record lists metformin; the recogniser garbled it once ("metforming") and once heard
    # "metoprolol", a real drug: the garbled word is corrected, the real drug is never rewritten.
    heard = "You take metforming 1 g twice a day. And metoprolol 50 mg."
    live = Transcript(text=heard, origin="asr", model="medasr", duration_s=10)
    result = ConsultationPipeline(parts.components(), store=store, policies=FAST).run(_request(store, live))
    assert result.transcript.text == "You take Metformin 1 g twice a day. And metoprolol 50 mg."
    assert [(c.original, c.corrected) for c in result.transcript.corrections] == [("metforming", "Metformin")]
    saved = store.latest_transcript(result.consultation_id)
    assert saved.text == result.transcript.text and saved.corrections == result.transcript.corrections
    review = [d for d in result.document.discrepancies if d.kind == "other"]
    assert [(d.subject, d.severity) for d in review] == [("Metformin", "low")]
    assert all(result.transcript.text[d.transcript.char_start : d.transcript.char_end] == d.subject for d in review)


def test_typed_transcripts_are_never_corrected(store: AppStore, parts: Parts) -> None:
    typed = Transcript(text="You take metforming daily.", origin="typed")
    result = ConsultationPipeline(parts.components(), store=store, policies=FAST).run(_request(store, typed))
    assert result.transcript.text == "You take metforming daily." and result.transcript.corrections == []


@pytest.mark.slow  # loads the embedded GGUF twice
def test_the_out_of_memory_retry_writes_the_sections_one_after_another() -> None:
    from clarke_desktop.pipeline.components import REDUCED_CONTEXT, open_engine

    first, retry = open_engine("embedded", 0), open_engine("embedded", 1)
    try:
        assert first.together and first.context_length > REDUCED_CONTEXT
        # The retry asks for less memory: a smaller context, and a cache for one sequence only.
        assert not retry.together and retry.context_length == REDUCED_CONTEXT
    finally:
        first.close()
        retry.close()
