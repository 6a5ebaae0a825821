"""The real MedASR architecture (105M parameters) through the exporter: slow, opt-in.

Run with CLARKE_RUN_SLOW=1 (about 3-5 minutes on 2 cores); bench/asr.py exercises the same path.
"""

from __future__ import annotations

import json
import os

import pytest

from clarke_desktop.asr.transcriber import OnnxTranscriber

pytestmark = [
    pytest.mark.slow,
    pytest.mark.export,
    pytest.mark.skipif(not os.environ.get("CLARKE_RUN_SLOW"), reason="set CLARKE_RUN_SLOW=1 to run"),
]


def test_full_size_medasr_exports_and_transcribes(tmp_path, torch_modules, speech):
    from builders import build_snapshot
    from click.testing import CliRunner

    from clarke_desktop.cli import cli

    snapshot = build_snapshot(tmp_path / "snap", tiny=False, init_range=0.02)
    out = tmp_path / "asr"
    result = CliRunner().invoke(
        cli,
        ["models", "export-medasr", "--snapshot", str(snapshot), "--out", str(out), "--precision", "fp32"],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["parameters"] == 105_265_408
    assert meta["encoder"] == {
        "hidden_size": 512,
        "num_hidden_layers": 17,
        "num_attention_heads": 8,
        "intermediate_size": 2048,
    }
    assert meta["parity"]["fp32"]["argmax_agreement"] >= 0.999
    transcript = OnnxTranscriber(out, device="cpu").transcribe(speech)
    assert transcript.duration_s > 3 and transcript.provider == "CPUExecutionProvider"
