"""`clarke-desktop transcribe` and `clarke-desktop models export-medasr`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from clarke_desktop.asr.base import AsrError, AudioError


@click.command()
@click.argument("audio_file", type=click.Path(path_type=Path))
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Exported MedASR model directory (default: the installed speech model pack).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print text, words with timings, provider and timings as JSON."
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cuda", "cpu"]),
    default="auto",
    show_default=True,
    help="Where to run.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "int8"]),
    default="auto",
    show_default=True,
    help="Which exported graph to use (auto: fp16 on CUDA, fp32 on CPU).",
)
def transcribe(audio_file: Path, model_dir: Path | None, as_json: bool, device: str, precision: str) -> None:
    """Transcribe AUDIO_FILE (WAV, FLAC, OGG or MP3; any rate and channel count) with MedASR.

    Example: clarke-desktop transcribe visit.wav --model /opt/models/asr --json
    """
    from clarke_desktop.asr.transcriber import load_transcriber

    try:
        transcriber = load_transcriber(model_dir, device=device, precision=precision)
        transcript = transcriber.transcribe_file(audio_file)
    except (AsrError, AudioError) as exc:
        raise click.ClickException(str(exc)) from exc
    if transcriber.provider_note:
        click.echo(f"note: {transcriber.provider_note}", err=True)
    if not as_json:
        click.echo(transcript.text)
        return
    payload = {
        "text": transcript.text,
        "words": [w.model_dump() for w in transcript.words],
        "provider": transcript.provider,
        "precision": transcriber.precision,
        "model": transcript.model,
        "audio_duration_s": transcript.duration_s,
        "processing_s": transcript.processing_s,
    }
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2))


@click.command("export-medasr")
@click.option(
    "--source",
    "--snapshot",
    "source",
    required=True,
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Local google/medasr snapshot (save_pretrained files: config.json, model.safetensors, tokenizer).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Model directory to create.")
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    type=click.Choice(["fp32", "fp16", "int8"]),
    help="Graphs to write (repeatable; default: fp32, fp16 and int8).",
)
@click.option("--revision", default=None, help="Source revision to record (default: read from the snapshot).")
@click.option("--overwrite", is_flag=True, help="Replace an existing model directory.")
def export_medasr(
    source: Path, out: Path, precisions: tuple[str, ...], revision: str | None, overwrite: bool
) -> None:
    """Export a MedASR snapshot to ONNX, checked against PyTorch (needs the `export` extra).

    Example: clarke-desktop models export-medasr --source ./medasr --out ./models/asr --precision fp32
    """
    from clarke_desktop.asr.export import ExportError
    from clarke_desktop.asr.export import export_medasr as run_export

    try:
        result = run_export(
            source, out, precisions or ("fp32", "fp16", "int8"), revision=revision, overwrite=overwrite
        )
    except ExportError as exc:
        raise click.ClickException(str(exc)) from exc
    for precision, figures in result.parity.items():
        click.echo(
            f"{precision}: max |logit diff| {figures['max_abs_diff']:.2e}, "
            f"argmax agreement {figures['argmax_agreement']:.4f} over {figures['frames']} frames",
            err=True,
        )
    click.echo(str(result.out))


COMMANDS = [transcribe]
MODELS_COMMANDS = [export_medasr]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(transcribe())
