"""The consultation pipeline: transcribe -> context -> letter, headless and GUI alike.

Plain Python: the GUI calls `ConsultationPipeline.run` from a worker thread with callbacks. Each
stage has a deadline and retries; failures degrade as the blueprint's tiers say (§10):

- FHIR unavailable (after retries)  -> letter from the transcript only, with a warning;
- ASR model missing                 -> `TranscriptRequired`: the caller supplies typed/imported text;
- letter model missing              -> the embedded default writes it, flagged as a demo;
- out of memory                     -> one retry with smaller settings, then a clear error.

A transcript that live transcription already finished during recording is used as it is, so only
the context and letter stages remain when recording stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from clarke_desktop.asr.base import AsrError, AsrModelMissing, AudioError
from clarke_desktop.cancel import Cancelled, CancelToken
from clarke_desktop.config import Settings
from clarke_desktop.fhir.client import FhirClient, FhirError, FhirNotFound, FhirUnavailable
from clarke_desktop.llm.base import (
    ContextTooLong,
    LlmEngine,
    LlmError,
    ModelMissing,
    ModelOutOfMemory,
)
from clarke_desktop.pipeline.errors import ErrorKind, PipelineError, StageTimeout, TranscriptRequired
from clarke_desktop.pipeline.stages import StageOutcome, StagePolicy, run_stage
from clarke_desktop.pipeline.timing import InferenceClock, TimedEngine, TimedTranscriber
from clarke_desktop.schemas import (
    ClinicalDocument,
    Clinician,
    ConsultationStatus,
    Demographics,
    DocumentType,
    PatientContext,
    PipelineProgress,
    PipelineStage,
    Transcript,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[PipelineProgress], None]
SectionCallback = Callable[..., None]

EHR_UNAVAILABLE = (
    "EHR unavailable: the letter was drafted from the transcript only; check the record before signing."
)
DEMO_MODEL_WARNING = "Drafted by the embedded demo model: not for clinical use."


class LetterWriter(Protocol):
    def __call__(
        self,
        *,
        consultation_id: str,
        transcript: Transcript,
        context: PatientContext,
        doc_type: DocumentType,
        engine: LlmEngine,
        clinician: Clinician,
        aside: str,
        letter_date: str,
        max_tokens: int | None,
        on_section: SectionCallback | None,
        cancel: CancelToken,
    ) -> ClinicalDocument: ...


@dataclass
class Components:
    """What the pipeline drives. `clarke_desktop.pipeline.components.default_components` builds the
    real ones; tests swap single parts to exercise the logic around them."""

    fhir: Callable[[], FhirClient]
    transcriber: Callable[[], Any]  # -> Transcriber; raises AsrModelMissing
    engine: Callable[[str, int], LlmEngine]  # (role, attempt) -> engine; attempt > 0: smaller settings
    build_context: Callable[..., PatientContext]
    write_letter: LetterWriter
    load_audio: Callable[[Path], np.ndarray]
    embedded_role: str = "embedded"
    # Model judgement on a retrieved context (flags, summary) as its own step, so a slow model
    # cannot make the record look unavailable. None: `build_context` is given the engine instead.
    judge_context: Callable[..., PatientContext] | None = None


@dataclass
class ConsultationRequest:
    consultation_id: str
    patient_id: str
    doc_type: DocumentType = "clinic"
    audio_path: Path | None = None
    audio: np.ndarray | None = None
    transcript: Transcript | None = None  # typed, imported, or finished by live transcription
    aside: str = ""  # the clinician's note to the letter writer
    letter_date: str | None = None
    max_section_tokens: int | None = None  # cap per narrative section (None: the writer's default)


@dataclass
class PipelineResult:
    consultation_id: str
    transcript: Transcript
    context: PatientContext
    document: ClinicalDocument
    letter_version: int | None
    timings: dict[str, float] = field(default_factory=dict)  # per stage, seconds
    inference_s: dict[str, float] = field(default_factory=dict)  # inside model calls, per role
    load_s: dict[str, float] = field(default_factory=dict)  # model loading, per role
    warnings: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)  # tiers taken: ehr_unavailable, demo_model, ...
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return sum(self.timings.values())


@dataclass
class _Run:
    """One consultation's run: what its stages report into. Kept off the pipeline object, so one
    pipeline (with its loaded models) can serve two consultations at once."""

    request: ConsultationRequest
    cancel: CancelToken
    on_progress: ProgressCallback | None
    on_section: SectionCallback | None
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    def progress(self, stage: PipelineStage, pct: int, message: str) -> None:
        if self.on_progress is not None:
            self.on_progress(
                PipelineProgress(
                    consultation_id=self.request.consultation_id,
                    stage=stage,
                    progress_pct=pct,
                    message=message,
                )
            )


# How a stage's final failure reads to the clinician, first match wins: (error, kind, message).
Failures = tuple[tuple[type[BaseException], ErrorKind, str], ...]
TRANSCRIBE_FAILURES: Failures = (
    (AudioError, "audio_error", "The audio could not be transcribed: {exc}"),
    (StageTimeout, "timeout", "Transcription is taking longer than expected. Retry, or type the transcript."),
    (AsrError, "model_error", "Speech recognition failed: {exc}"),
)
LETTER_FAILURES: Failures = (
    (
        ModelOutOfMemory,
        "model_error",
        "Document generation ran out of memory, also with smaller settings. Close other programs using the GPU "
        "and retry, or ask IT to install a smaller letter model.",
    ),
    (
        StageTimeout,
        "timeout",
        "Document generation is taking longer than expected. Retry, or return to the clinic list.",
    ),
    (ContextTooLong, "model_error", "The consultation is too long for the letter model: {exc}"),
    (LlmError, "model_error", "Document generation failed: {exc}. Please retry."),  # InvalidModelOutput too
)


def _stage_failure(stage: str, exc: BaseException, failures: Failures) -> PipelineError:
    kind, message = next((k, m) for error, k, m in failures if isinstance(exc, error))
    return PipelineError(stage, kind, message.format(exc=exc), detail=repr(exc))


DEFAULT_POLICIES: dict[str, StagePolicy] = {
    # Long audio on CPU can take minutes; the deadline is there to catch a hang, not slowness.
    "transcribe": StagePolicy(timeout_s=1800, retries=1, retry_on=(StageTimeout,)),
    # Blueprint §10a: FHIR 2 retries with back-off 1 s, 3 s.
    "context": StagePolicy(
        timeout_s=300, retries=2, backoff_s=(1.0, 3.0), retry_on=(FhirUnavailable, StageTimeout)
    ),
    # The EHR model's flags and summary: optional, so a slow model is dropped, not retried.
    "context_model": StagePolicy(timeout_s=600, retries=0, retry_on=(StageTimeout,)),
    # One retry with smaller settings (blueprint: reduced max tokens) on OOM or timeout.
    "letter": StagePolicy(timeout_s=1800, retries=1, retry_on=(ModelOutOfMemory, StageTimeout)),
}
LETTER_MAX_TOKENS = (None, 256)  # tokens per section, per attempt: the writer's default, then fewer


class ConsultationPipeline:
    def __init__(
        self,
        components: Components,
        *,
        settings: Settings | None = None,
        store: Any | None = None,  # AppStore; optional so the pipeline runs without persistence
        policies: dict[str, StagePolicy] | None = None,
        actor: str | None = None,
    ) -> None:
        self.components = components
        self.settings = settings or Settings()
        self.store = store
        self.policies = {**DEFAULT_POLICIES, **(policies or {})}
        self.actor = actor or self.settings.clinician.name
        self.clock = InferenceClock()
        self._engines: dict[str, LlmEngine] = {}
        self._transcriber: Any | None = None
        self.load_s: dict[str, float] = {}

    # --- model handles (kept between consultations; a GUI session reuses them) ------------------

    def engine(self, role: str, attempt: int = 0) -> LlmEngine:
        key = f"{role}@{attempt}"
        if key not in self._engines:
            started = time.perf_counter()
            engine = self.components.engine(role, attempt)
            self.load_s[role] = self.load_s.get(role, 0.0) + time.perf_counter() - started
            self._engines[key] = TimedEngine(engine, self.clock, role)
        return self._engines[key]

    def drop_engine(self, role: str, attempt: int = 0) -> None:
        engine = self._engines.pop(f"{role}@{attempt}", None)
        if engine is not None:
            engine.close()

    def transcriber(self) -> Any:
        if self._transcriber is None:
            started = time.perf_counter()
            self._transcriber = TimedTranscriber(self.components.transcriber(), self.clock)
            self.load_s["asr"] = time.perf_counter() - started
        return self._transcriber

    def close(self) -> None:
        for key in list(self._engines):
            self._engines.pop(key).close()
        close = getattr(self._transcriber, "close", None)
        if close:
            close()
        self._transcriber = None

    # --- the run ----------------------------------------------------------------------------------

    def run(
        self,
        request: ConsultationRequest,
        *,
        on_progress: ProgressCallback | None = None,
        on_section: SectionCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> PipelineResult:
        run = _Run(request, cancel or CancelToken(), on_progress, on_section)
        cid = request.consultation_id
        inference_before = dict(self.clock.seconds)
        load_before = dict(self.load_s)
        stage_name = "transcribe"
        try:
            self._set_status(cid, ConsultationStatus.PROCESSING)
            transcript = self._timed(run, "transcribe", self._transcribe)
            self._save("save_transcript", cid, transcript)
            stage_name = "context"
            context = self._timed(run, "context", self._context)
            if "context_model" in run.timings:  # reported apart: record retrieval vs the model's judgement
                run.timings["context"] -= run.timings["context_model"]
            self._save("save_context", cid, context)
            if transcript.origin == "asr" and not transcript.corrections and not transcript.sound_alike_flags:
                transcript = self._correct(transcript, context)
                if transcript.corrections or transcript.sound_alike_flags:
                    self._save("save_transcript", cid, transcript)
            stage_name = "letter"
            document = self._timed(run, "letter", lambda r: self._letter(r, transcript, context))
            stage_name = "save"
            version = self._timed(run, "save", lambda r: self._save("save_generated_letter", cid, document))
        except BaseException as exc:
            self._report_failure(run, stage_name, exc)
            raise
        run.progress(PipelineStage.COMPLETE, 100, "Draft ready for review.")
        return PipelineResult(
            consultation_id=cid,
            transcript=transcript,
            context=context,
            document=document,
            letter_version=version,
            timings={k: round(v, 4) for k, v in run.timings.items()},
            inference_s={
                k: round(v - inference_before.get(k, 0.0), 4) for k, v in self.clock.seconds.items()
            },
            load_s={
                k: round(v - load_before.get(k, 0.0), 4)
                for k, v in self.load_s.items()
                if v != load_before.get(k)
            },
            warnings=run.warnings,
            degraded=run.degraded,
            attempts=run.attempts,
        )

    @staticmethod
    def _timed(run: _Run, name: str, stage: Callable[[_Run], Any]) -> Any:
        started = time.perf_counter()
        try:
            return stage(run)
        finally:
            run.timings[name] = time.perf_counter() - started

    def _save(self, method: str, cid: str, value: Any) -> Any:
        """Persist through the app store when there is one (the pipeline also runs without)."""
        if self.store is None:
            return None
        return getattr(self.store, method)(cid, value, actor=self.actor)

    def _report_failure(self, run: _Run, stage: str, exc: BaseException) -> None:
        """Record the failure (class only: a message may quote patient text) and tell the caller."""
        cid = run.request.consultation_id
        if isinstance(exc, Cancelled):
            self._failed(cid, stage, "Cancelled")
            run.progress(PipelineStage.FAILED, 0, "Cancelled.")
        elif isinstance(exc, PipelineError):
            exc.consultation_id = cid
            self._failed(cid, stage, exc.kind)
            run.progress(PipelineStage.FAILED, 0, exc.message)
        elif isinstance(exc, TranscriptRequired):
            self._failed(cid, stage, "TranscriptRequired")
            run.progress(
                PipelineStage.FAILED, 0, "Speech recognition is not installed: type or import the transcript."
            )
        elif isinstance(exc, Exception):
            log.error("pipeline stage %s failed: %s", stage, type(exc).__name__)
            self._failed(cid, stage, type(exc).__name__)
            run.progress(
                PipelineStage.FAILED, 0, "Something went wrong; the work so far is saved. Please retry."
            )

    # --- stages -------------------------------------------------------------------------------

    @staticmethod
    def _correct(transcript: Transcript, context: PatientContext) -> Transcript:
        """Record-aware correction of recognised speech: both forms kept, each shown for review."""
        from clarke_desktop.asr.correction import correct_transcript, vocabulary_from_context

        return correct_transcript(transcript, vocabulary_from_context(context))

    def _transcribe(self, run: _Run) -> Transcript:
        request, progress = run.request, run.progress
        if request.transcript is not None:
            text = request.transcript.text.strip()
            if not text:
                raise PipelineError(
                    "transcribe",
                    "audio_error",
                    "The transcript is empty: type or import the consultation text.",
                )
            label = (
                "Transcript from live recording"
                if request.transcript.origin == "asr"
                else "Transcript provided"
            )
            progress(PipelineStage.TRANSCRIBING, 30, f"{label}.")
            return request.transcript
        if request.audio is None and request.audio_path is None:
            raise PipelineError(
                "transcribe",
                "audio_error",
                "Nothing to transcribe: record, import audio, or type the transcript.",
            )
        progress(PipelineStage.TRANSCRIBING, 2, "Loading audio...")
        audio = request.audio
        if audio is None:
            try:
                audio = self.components.load_audio(Path(request.audio_path))  # type: ignore[arg-type]
            except AudioError as exc:
                raise PipelineError(
                    "transcribe",
                    "audio_error",
                    f"The audio file {request.audio_path} could not be used: {exc}. Re-record or import another file.",
                    detail=repr(exc),
                ) from exc
        progress(PipelineStage.TRANSCRIBING, 5, "Loading speech recognition...")
        try:
            transcriber = self.transcriber()
        except AsrModelMissing as exc:
            raise TranscriptRequired(
                f"Speech recognition (MedASR) is not installed ({exc}). Type or paste the transcript, or import a "
                "transcript file; IT can install the model pack."
            ) from exc
        progress(PipelineStage.TRANSCRIBING, 10, "Transcribing...")
        outcome = StageOutcome()
        try:
            transcript: Transcript = run_stage(
                "transcribe",
                lambda token, attempt: transcriber.transcribe(audio),
                self.policies["transcribe"],
                cancel=run.cancel,
                outcome=outcome,
            )
        except (AudioError, StageTimeout, AsrError) as exc:
            raise _stage_failure("transcribe", exc, TRANSCRIBE_FAILURES) from exc
        finally:
            run.attempts["transcribe"] = outcome.attempts
        if not transcript.text.strip():
            where = f" in {request.audio_path}" if request.audio_path else ""
            raise PipelineError(
                "transcribe",
                "audio_error",
                f"No speech could be recognised{where}. Re-record, import another audio file, or type the transcript.",
            )
        progress(PipelineStage.TRANSCRIBING, 30, f"Transcribed {transcript.word_count} words.")
        return transcript

    def _context(self, run: _Run) -> PatientContext:
        request, progress, warnings, degraded = run.request, run.progress, run.warnings, run.degraded
        progress(PipelineStage.RETRIEVING_CONTEXT, 32, "Reading the patient record...")
        judge = self.components.judge_context
        ehr_engine: LlmEngine | None = None
        if judge is None:
            ehr_engine = self._ehr_engine(warnings)
        outcome = StageOutcome()

        def attempt_fn(token: CancelToken, attempt: int) -> PatientContext:
            client = self.components.fhir()
            try:
                return self.components.build_context(
                    client, request.patient_id, engine=ehr_engine, cancel=token
                )
            finally:
                client.close()

        try:
            context = run_stage(
                "context", attempt_fn, self.policies["context"], cancel=run.cancel, outcome=outcome
            )
        except FhirNotFound as exc:
            raise PipelineError(
                "context",
                "not_found",
                f"Patient {request.patient_id} is not in the record.",
                detail=repr(exc),
            ) from exc
        except (FhirError, StageTimeout, OSError) as exc:
            log.warning("context stage degraded: %s", type(exc).__name__)
            warnings.append(EHR_UNAVAILABLE)
            degraded.append("ehr_unavailable")
            context = transcript_only_context(request.patient_id, reason=type(exc).__name__)
        finally:
            run.attempts["context"] = outcome.attempts
        if "ehr_unavailable" not in degraded and context.retrieval_warnings:
            if not context.demographics.name:
                # The client opened but nothing could be read: the same tier as no store at all.
                warnings.append(EHR_UNAVAILABLE)
                degraded.append("ehr_unavailable")
            else:
                degraded.append("ehr_partial")
        if judge is not None and "ehr_unavailable" not in degraded:
            context = self._timed(run, "context_model", lambda r: self._judge(r, context, judge))
        progress(PipelineStage.RETRIEVING_CONTEXT, 45, "Record context ready.")
        return context

    def _ehr_engine(self, warnings: list[str]) -> LlmEngine | None:
        try:
            return self.engine("ehr_agent")
        except LlmError as exc:
            warnings.append(f"Record summary unavailable: the EHR model could not be loaded ({exc}).")
            return None

    def _judge(
        self, run: _Run, context: PatientContext, judge: Callable[..., PatientContext]
    ) -> PatientContext:
        engine = self._ehr_engine(run.warnings)
        if engine is None:
            return context
        run.progress(PipelineStage.RETRIEVING_CONTEXT, 38, "Summarising the record...")
        outcome = StageOutcome()
        try:
            return run_stage(
                "context_model",
                lambda token, attempt: judge(context, engine, cancel=token),
                self.policies["context_model"],
                cancel=run.cancel,
                outcome=outcome,
            )
        except StageTimeout:
            # Blueprint §10a: a slow EHR model falls back to the deterministic record context.
            run.warnings.append("Clinical flags and summary are unavailable: the EHR model took too long.")
            return context
        finally:
            run.attempts["context_model"] = outcome.attempts

    def _letter(self, run: _Run, transcript: Transcript, context: PatientContext) -> ClinicalDocument:
        request, progress, warnings, degraded = run.request, run.progress, run.warnings, run.degraded
        progress(PipelineStage.GENERATING_DOCUMENT, 46, "Loading the letter model...")
        role = "letter_writer"
        try:
            self.engine(role)
        except ModelMissing as exc:
            log.warning("letter model missing; using the embedded default")
            role = self.components.embedded_role
            warnings.append(f"The letter model is not installed ({exc}); the embedded default was used.")
            degraded.append("letter_model_missing")
        except ModelOutOfMemory:
            pass  # handled as attempt 0 failing below
        clinician = Clinician(
            name=self.settings.clinician.name,
            title=self.settings.clinician.title,
            specialty=self.settings.clinician.specialty,
        )
        letter_date = request.letter_date or date.today().isoformat()
        outcome = StageOutcome()

        def attempt_fn(token: CancelToken, attempt: int) -> ClinicalDocument:
            if attempt > 0:
                # Free the big context first: a failed attempt's model would still hold its memory.
                self.drop_engine(role, attempt - 1)
                progress(PipelineStage.GENERATING_DOCUMENT, 46, "Retrying with smaller settings...")
            engine = self.engine(role, attempt)
            progress(PipelineStage.GENERATING_DOCUMENT, 50, "Drafting the letter...")
            return self.components.write_letter(
                consultation_id=request.consultation_id,
                transcript=transcript,
                context=context,
                doc_type=request.doc_type,
                engine=engine,
                clinician=clinician,
                aside=request.aside,
                letter_date=letter_date,
                max_tokens=_section_tokens(request.max_section_tokens, attempt),
                on_section=run.on_section,
                cancel=token,
            )

        try:
            document = run_stage(
                "letter", attempt_fn, self.policies["letter"], cancel=run.cancel, outcome=outcome
            )
        except (StageTimeout, LlmError) as exc:
            raise _stage_failure("letter", exc, LETTER_FAILURES) from exc
        finally:
            run.attempts["letter"] = outcome.attempts
        if outcome.attempts > 1:
            degraded.append("reduced_settings")
            warnings.append("The letter was drafted with reduced settings after the first attempt failed.")
        if document.model is not None and document.model.demo:
            degraded.append("demo_model")
            if not any("demo model" in w.lower() for w in [*warnings, *document.warnings]):
                warnings.append(DEMO_MODEL_WARNING)
        document = document.model_copy(update={"warnings": _merge(document.warnings, warnings)})
        # One list for the caller: the writer's own warnings (it quotes the record's) plus the tiers'.
        warnings[:] = document.warnings
        progress(PipelineStage.GENERATING_DOCUMENT, 99, "Letter drafted.")
        return document

    # --- store ----------------------------------------------------------------------------------

    def _set_status(self, cid: str, status: ConsultationStatus) -> None:
        if self.store is not None:
            self.store.set_status(cid, status)

    def _failed(self, cid: str, stage: str, error: str) -> None:
        if self.store is None:
            return
        try:
            self.store.record_failure(cid, stage, error, actor=self.actor)
            latest = self.store.latest_letter(cid)
            self.store.set_status(cid, ConsultationStatus.REVIEW if latest else ConsultationStatus.WAITING)
        except Exception:  # the original failure matters more than its bookkeeping
            log.exception("could not record the pipeline failure")


def _section_tokens(requested: int | None, attempt: int) -> int | None:
    smaller = LETTER_MAX_TOKENS[min(attempt, len(LETTER_MAX_TOKENS) - 1)]
    if requested is None:
        return smaller
    return requested if smaller is None else min(requested, smaller)


def transcript_only_context(patient_id: str, *, reason: str) -> PatientContext:
    """The context when the record cannot be reached: no facts, only the warning."""
    return PatientContext(
        patient_id=patient_id,
        demographics=Demographics(name="", date_of_birth=""),
        retrieval_warnings=[f"The patient record could not be reached ({reason})."],
    )


def _merge(first: list[str], second: list[str]) -> list[str]:
    out = list(first)
    out.extend(w for w in second if w not in out)
    return out
