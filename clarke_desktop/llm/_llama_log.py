"""Route llama.cpp / ggml logs into Python logging, quietly, and keep recent problems for errors.

llama-cpp-python installs a callback at import that prints to stderr; ours replaces it. llama.cpp
INFO chatter goes to DEBUG, so nothing is printed unless logging is configured for it. Recent
warning/error lines are kept so a failed load or decode can say *why* (e.g. out of memory).
"""

from __future__ import annotations

import collections
import ctypes
import logging
import threading

import llama_cpp

logger = logging.getLogger("clarke_desktop.llm.llama_cpp")

# ggml_log_level in this llama.cpp: NONE=0, DEBUG=1, INFO=2, WARN=3, ERROR=4, CONT=5 (continues the
# previous line). llama-cpp-python's own _logger.py still documents an older order.
_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR}
_recent: collections.deque[str] = collections.deque(maxlen=64)
_lock = threading.Lock()
_state = {"last_level": logging.DEBUG, "installed": False}

_OOM_MARKERS = ("out of memory", "failed to allocate", "cudamalloc", "unable to allocate", "oom")


def _on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    try:
        message = text.decode("utf-8", errors="replace").rstrip("\n")
        py_level = _state["last_level"] if level == 5 else _LEVELS.get(level, logging.DEBUG)
        _state["last_level"] = py_level
        if py_level >= logging.WARNING:
            # llama.cpp warns routinely while loading: keep warnings for diagnostics but log them
            # at INFO so an unconfigured app stays quiet; errors stay errors.
            with _lock:
                _recent.append(message)
            logger.log(logging.ERROR if py_level >= logging.ERROR else logging.INFO, "%s", message)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s", message)
    except Exception:  # never let an exception cross into C
        pass


_callback = llama_cpp.llama_log_callback(_on_log)  # module-level: must outlive every native call


def install() -> None:
    """Idempotent; call before loading a model."""
    if not _state["installed"]:
        llama_cpp.llama_log_set(_callback, ctypes.c_void_p(0))
        _state["installed"] = True


def recent_problems() -> list[str]:
    with _lock:
        return list(_recent)


def clear_recent() -> None:
    with _lock:
        _recent.clear()


def looks_like_oom(lines: list[str]) -> bool:
    return any(marker in line.lower() for line in lines for marker in _OOM_MARKERS)
