"""Reading a transcript file, the same way for the window and the command line."""

from __future__ import annotations

from pathlib import Path

from clarke_desktop.schemas import Transcript
from clarke_desktop.session.errors import SessionError

# A three-hour consultation transcribed is about 200 KB; a file far beyond that is not a transcript,
# and reading it whole would only fill memory.
MAX_TRANSCRIPT_BYTES = 5 * 1024 * 1024


def read_transcript_file(path: Path) -> Transcript:
    """A typed or exported transcript: UTF-8 text (or a Transcript JSON file), origin
    "imported_text". Raises SessionError naming the file and what to do."""
    try:
        size = path.stat().st_size
        if size > MAX_TRANSCRIPT_BYTES:
            raise SessionError(
                f"The transcript file {path} is {size / 1024 / 1024:.1f} MB: a consultation's transcript is "
                f"far smaller (at most {MAX_TRANSCRIPT_BYTES // 1024 // 1024} MB is read). Check that it is the right file."
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise SessionError(f"Cannot read the transcript file {path}: {exc.strerror or exc}.") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SessionError(
            f"The transcript file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 and retry."
        ) from exc
    if path.suffix.lower() == ".json":
        try:
            return Transcript.model_validate_json(text).model_copy(update={"origin": "imported_text"})
        except ValueError as exc:
            raise SessionError(f"The transcript file {path} is not a Transcript JSON: {exc}") from exc
    if not text.strip():
        raise SessionError(f"The transcript file {path} is empty.")
    return Transcript(text=text.strip(), origin="imported_text")
