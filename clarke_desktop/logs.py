"""One log for the whole app: every `clarke_desktop.*` and `local_fhir.*` logger (llama.cpp and
ONNX Runtime messages are routed into `clarke_desktop.llm` and `clarke_desktop.asr`) reaches the
rotating log file. Messages never carry patient content by our own rule; exception messages may
quote it (a value that failed to parse, a transcript line), so only their type and the traceback's
frames are written, never their text."""

from __future__ import annotations

import logging
import traceback
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

TREES = ("clarke_desktop", "local_fhir")
WITHHELD = "<message withheld: it may quote patient data>"


class ScrubbingFormatter(logging.Formatter):
    """Exceptions as type and frames only: `ValueError: <message withheld…>`."""

    def formatException(self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]) -> str:  # noqa: N802
        kind, exc, tb = ei
        if kind is None or exc is None:
            return ""
        lines = ["Traceback (most recent call last):"]
        lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in traceback.extract_tb(tb)]
        chained = exc.__cause__ or exc.__context__
        if chained is not None:
            lines.insert(0, f"(after {type(chained).__name__}: {WITHHELD})")
        lines.append(f"{kind.__module__}.{kind.__qualname__}: {WITHHELD}")
        return "\n".join(lines)


def log_to_file(path: Path, level: int = logging.INFO) -> RotatingFileHandler:
    """Attach one rotating file handler to every logger tree of the app (idempotent per path)."""
    for name in TREES:
        for h in logging.getLogger(name).handlers:
            if isinstance(h, RotatingFileHandler) and Path(h.baseFilename) == path.resolve():
                return h
    handler = RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in TREES:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(min(logger.getEffectiveLevel(), level))
    return handler
