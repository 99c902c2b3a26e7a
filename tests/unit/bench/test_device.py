"""The side-by-side device benchmark (bench.device), run small on the CPU: the three ratios measured, printed with
the device, written as JSON. On a GPU the same command runs at full size."""

from __future__ import annotations

import json

import pytest

from hybridir_utils.bench import cli


@pytest.mark.slow
def test_the_device_bench_prints_its_ratios_with_the_device(tmp_path, shared_data_dir, capsys):
    out = tmp_path / "device.json"
    cli.main(["device", "--data-dir", str(shared_data_dir), "--n", "48", "--batch-size", "16",
              "--train-batch-size", "8", "--train-steps", "2", "--warmup", "1", "--score-languages", "en", "de",
              "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert "device: " in printed and "x (target >= 1.0)" in printed and "x (target <= 3.0)" in printed
    result = json.loads(out.read_text())
    assert result["texts"] == 48 and result["environment"]["device"] == "cpu"
    assert result["encode_ratio"] == pytest.approx(result["project_per_s"] / result["plain_per_s"])
    assert result["encode_ratio_reused"] == pytest.approx(result["project_reused_per_s"] / result["plain_per_s"])
    assert "the next system, its batches already tokenised" in printed
    assert result["tokenise_texts"] == 26_104 and 0 < result["tokenise_reused_s"] < result["tokenise_s"]
    assert result["train_ratio"] == pytest.approx(result["trainer_step_s"] / result["bare_step_s"])
    assert 0 < result["bare_step_s"] and 0 < result["trainer_step_s"]
    assert "LAReQA pools ranked on the host" in printed and result["score_queries"] == 2 * 1190
    assert result["score_ratio"] == pytest.approx(result["host_score_s"] / result["device_score_s"])
