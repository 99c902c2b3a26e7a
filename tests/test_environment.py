"""Precision and device facts: what `auto` resolves to where, and that every result can record its machine."""

from __future__ import annotations

import json

import pytest
import torch

from hybridir_utils import environment
from hybridir_utils.environment import PrecisionError, resolve_precision


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """A CPU of chosen flags and a fresh verdict folder."""
    monkeypatch.setenv("HYBRIDIR_CACHE_DIR", str(tmp_path))

    def set_flags(*flags):
        monkeypatch.setattr(environment, "cpu_info", lambda: {"cpu_model": "Test CPU 9000", "cpu_flags": list(flags)})

    return set_flags


def _verdict(change: float) -> None:
    path = environment.precision_verdict_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"map_change": change}))


def test_auto_is_bf16_on_a_gpu_and_fp32_on_a_cpu_without_bf16(cpu):
    cpu("avx2", "fma")
    assert resolve_precision("auto", "cuda") == "bf16"
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"


def test_auto_uses_bf16_on_a_cpu_only_after_a_passing_benchmark(cpu):
    cpu("amx_bf16", "avx512_bf16")
    assert resolve_precision("auto", "cpu") == "fp32"  # bf16 units, but nothing measured on this CPU yet
    _verdict(0.012)
    assert resolve_precision("auto", "cpu") == "fp32"  # measured: mAP moved more than 0.005
    _verdict(-0.003)
    assert resolve_precision("auto", "cpu") == "bf16"
    cpu("avx2")  # same verdict file name would not matter: no bf16 units, no bf16
    assert resolve_precision("auto", "cpu") == "fp32"


def test_bf16_on_a_cpu_without_units_and_unknown_names_are_errors(cpu):
    cpu("avx2")
    with pytest.raises(PrecisionError, match=r"Test CPU 9000.*no bf16"):
        resolve_precision("bf16", "cpu")
    with pytest.raises(PrecisionError, match="'fp16' is not one of"):
        resolve_precision("fp16", "cpu")


def test_describe_records_device_versions_and_cpu_flags():
    facts = environment.describe("fp32")
    assert facts["device"] in ("cpu", "cuda") and facts["precision"] == "fp32"
    assert facts["torch"] == torch.__version__ and isinstance(facts["cpu_flags"], list)
    assert {"transformers", "sentence_transformers", "cpu_model", "gpu", "cuda"} <= set(facts)


def test_autocast_is_bf16_only_when_asked():
    x = torch.ones(4, 4)
    with environment.autocast("fp32", "cpu"):
        assert (x @ x).dtype == torch.float32
    with environment.autocast("bf16", "cpu"):
        assert (x @ x).dtype == torch.bfloat16
