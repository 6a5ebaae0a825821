"""bench/letter.py runs and reports what #18 asks for: prompt tokens requested and evaluated for a
letter written three ways in one run, and the ratios. Timings are printed, never compared here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # three letters on the embedded model


def test_the_letter_benchmark_reports_the_three_ways(tmp_path: Path) -> None:
    env = dict(os.environ, CLARKE_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, "bench/letter.py", "--repeats", "1", "--max-tokens", "4"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    reuse = json.loads(result.stdout)["prefix_reuse"]
    together, one_by_one, without = reuse["with_reuse"], reuse["one_by_one"], reuse["without_reuse"]
    assert (together["sections_together"], one_by_one["sections_together"], without["sections_together"]) == (3, 1, 1)
    read_once = reuse["prefix_tokens"] + reuse["section_request_tokens"]
    assert together["prompt_tokens_evaluated"] == one_by_one["prompt_tokens_evaluated"] == read_once
    assert without["prompt_tokens_evaluated"] == without["prompt_tokens_requested"] == together["prompt_tokens_requested"]
    assert without["prompt_tokens_requested"] == 3 * reuse["prefix_tokens"] + reuse["section_request_tokens"]
    assert reuse["meets_targets"]["evaluated_vs_prefix_plus_requests"] is True
    assert reuse["letter_time_with_vs_without"] > 0 and reuse["letter_time_one_by_one_vs_without"] > 0
