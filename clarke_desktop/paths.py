"""Where Clarke Desktop keeps things. One place, so the GUI, the CLI and local-fhir agree.

Every directory can be overridden by an environment variable (tests, IT, portable installs).
Patient data lives only under the user data directory, created readable by the user alone.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys
from pathlib import Path

import platformdirs

APP_NAME = "ClarkeDesktop"
APP_AUTHOR = "Clarke"


def _ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)
    elif os.name == "nt":
        _restrict_acl(str(path.resolve()))
    return path


def private_acl_command(folder: str, user: str) -> list[str]:
    """The icacls call that makes a Windows folder private: inherited entries removed (so no
    "Users" or "Everyone" read), full control for the user and for SYSTEM (backup, antivirus),
    inherited by every file and folder created inside ((OI)(CI))."""
    return ["icacls", folder, "/inheritance:r", "/grant:r", f"{user}:(OI)(CI)F", "/grant:r", "*S-1-5-18:(OI)(CI)F"]


@functools.lru_cache(maxsize=64)
def _restrict_acl(folder: str) -> None:
    """Once per folder and process (icacls takes tens of milliseconds). Windows has no mode bits;
    a failure is logged and `clarke-desktop doctor` reports a folder others can read."""
    user = os.environ.get("USERNAME", "")
    domain = os.environ.get("USERDOMAIN", "")
    if not user:
        return
    done = subprocess.run(private_acl_command(folder, f"{domain}\\{user}" if domain else user),
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        logging.getLogger(__name__).warning("could not restrict %s: %s", folder, done.stderr.strip())


def _private_dir(variable: str, default: str) -> Path:
    """The directory named by the environment `variable`, else `default`; created private."""
    return _ensure_private_dir(Path(os.environ.get(variable) or default))


def data_dir() -> Path:
    """The user's data directory: databases, recordings, drafts, logs, settings."""
    return _private_dir("CLARKE_DATA_DIR", platformdirs.user_data_dir(APP_NAME, APP_AUTHOR))


def fhir_db_path() -> Path:
    """The FHIR store in use (what `local-fhir` uses when no --db is given): the one named by
    CLARKE_FHIR_DB, else the app's own store."""
    return Path(os.environ.get("CLARKE_FHIR_DB") or own_fhir_db_path())


def own_fhir_db_path() -> Path:
    """The app's own store, created and seeded with the bundled demo data by the app itself."""
    return data_dir() / "fhir.sqlite3"


def fhir_db_is_named() -> bool:
    """Whether the user named another store (CLARKE_FHIR_DB): the app then never seeds or books
    demo data into it; only the user's own actions write there."""
    named = os.environ.get("CLARKE_FHIR_DB")
    return named is not None and named != "" and Path(named).resolve() != own_fhir_db_path().resolve()


def app_db_path() -> Path:
    """Consultations, transcripts, drafts, sign-offs and the audit log."""
    return data_dir() / "clarke.sqlite3"


def accounts_path() -> Path:
    """The account book: password hashes and sealed keys, no patient data (identity.accounts)."""
    return data_dir() / "accounts.sqlite3"


def recordings_dir() -> Path:
    return _ensure_private_dir(data_dir() / "recordings")


def exports_dir() -> Path:
    return _ensure_private_dir(data_dir() / "exports")


def logs_dir() -> Path:
    return _ensure_private_dir(data_dir() / "logs")


def settings_path() -> Path:
    return data_dir() / "settings.json"


def machine_dir() -> Path:
    """IT's machine-wide folder for shared data (the per-machine model packs live in `models/`).

    Taken from the operating system, never from an environment variable a user can set
    (platformdirs reads XDG_DATA_DIRS on Linux and macOS, WIN_PD_OVERRIDE_* on Windows): a user must
    not be able to make a folder of their own count as IT's.
    """
    if sys.platform == "win32":  # pragma: no cover - Windows only
        from platformdirs.windows import get_win_folder_via_ctypes  # the shell's folder, no override

        return Path(get_win_folder_via_ctypes("CSIDL_COMMON_APPDATA")) / APP_AUTHOR / APP_NAME
    if sys.platform == "darwin":  # pragma: no cover - macOS only
        return Path("/Library/Application Support") / APP_NAME
    return Path("/usr/local/share") / APP_NAME


def machine_config_dir() -> Path:
    """IT's machine-wide configuration, writable by administrators only: the public keys trusted to
    sign model packs (`trusted_keys/*.pub`) and the model-pack policy (`model-policy.json`).

    /etc/ClarkeDesktop on Linux, %ProgramData%\\Clarke\\ClarkeDesktop on Windows; like `machine_dir`
    never from an environment variable (tests replace this function).
    """
    if sys.platform.startswith("linux") or (os.name == "posix" and sys.platform != "darwin"):
        return Path("/etc") / APP_NAME
    return machine_dir()


def machine_models_dir() -> Path:
    """Where IT installs model packs for every user of the machine (`models install --scope machine`)."""
    return machine_dir() / "models"


def user_models_dir() -> Path:
    """The per-user models folder: searched only where IT's policy allows per-user packs."""
    return data_dir() / "models"


def models_dir_override() -> Path | None:
    """CLARKE_MODELS_DIR: an explicit models folder (tests, development, portable installs)."""
    value = os.environ.get("CLARKE_MODELS_DIR")
    return Path(value) if value else None


def model_dirs() -> list[Path]:
    """Every model-pack location, in search order: the explicit override (CLARKE_MODELS_DIR), IT's
    machine folder, then the per-user folder. `modelpack.verify.candidate_dirs` drops the per-user
    folder unless IT's policy allows per-user packs; every pack, wherever found, must still carry a
    manifest signed by a key IT trusts (see `machine_config_dir`)."""
    override = models_dir_override()
    return [*([override] if override else []), machine_models_dir(), user_models_dir()]


def cache_dir() -> Path:
    """Derived, re-creatable files (assembled embedded GGUF, hash cache)."""
    return _private_dir("CLARKE_CACHE_DIR", platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR))


def resources_dir() -> Path:
    """Bundled read-only data (demo clinic, FHIR dataset, audio, templates, styles)."""
    if os.environ.get("CLARKE_RESOURCES_DIR"):
        return Path(os.environ["CLARKE_RESOURCES_DIR"])
    frozen = getattr(sys, "_MEIPASS", None)  # PyInstaller bundle
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"
