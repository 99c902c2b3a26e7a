"""Precision and device facts: what `auto` resolves to where, and that every result can record its machine."""

from __future__ import annotations

import json

import pytest
import torch

from hybridir_utils.errors import PrecisionError
from hybridir_utils.utils import environment
from hybridir_utils.utils.environment import resolve_precision


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


def test_auto_is_bf16_on_a_gpu_and_fp32_on_a_cpu_without_bf16(cpu, monkeypatch):
    cpu("avx2", "fma")
    monkeypatch.setattr(environment, "gpu_has_bf16", lambda: True)
    assert resolve_precision("auto", "cuda") == "bf16"
    monkeypatch.setattr(environment, "gpu_has_bf16", lambda: False)  # a V100 or T4
    assert resolve_precision("auto", "cuda") == "fp32"
    with pytest.raises(PrecisionError, match="no bf16 support"):
        resolve_precision("bf16", "cuda")
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"


def test_auto_uses_bf16_on_a_cpu_only_after_a_passing_benchmark(cpu):
    cpu("amx_bf16", "avx512_bf16")
    assert resolve_precision("auto", "cpu") == "fp32"  # bf16 units, but nothing measured on this CPU yet
    _verdict(0.012)
    assert resolve_precision("auto", "cpu") == "fp32"  # measured: mAP moved more than 0.005
    _verdict(-0.003)
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu", training=True) == "fp32"  # the verdict measured encoding only
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


def test_bench_verdict_turns_auto_into_bf16_only_within_the_map_limit(cpu):
    from hybridir_utils.bench.throughput import _BF16, write_bf16_verdict

    cpu("amx_bf16")

    def result(change: float) -> dict:
        fp32 = {"setting": "+ token-length batching", "best_s": 2.0}
        bf16 = {"setting": _BF16, "best_s": 1.0, "mono_map_change": change, "multi_map_change": -change / 2}
        return {"encode": [fp32, bf16], "map_subset": "xquad-r en/de/zh, 2 articles"}

    path = write_bf16_verdict(result(0.004))
    verdict = json.loads(path.read_text())
    assert verdict["map_change"] == 0.004 and verdict["speedup_vs_fp32"] == 2.0 and verdict["cpu_flags"] == ["amx_bf16"]
    assert resolve_precision("auto", "cpu") == "bf16"
    write_bf16_verdict(result(-0.02))
    assert resolve_precision("auto", "cpu") == "fp32"
    assert write_bf16_verdict({"encode": [{"setting": "+ token-length batching", "best_s": 1.0}]}) is None


def test_bf16_and_fp32_embeddings_never_share_a_cache_entry(tmp_path):
    """Autocast leaves the weights' fingerprint as it is: the cache key must still tell bf16 from fp32."""
    from hybridir_utils.retrieval.embeddings import encode_cached, model_fingerprint

    class Toy:  # an encoder whose output shows whether it ran under bf16 autocast
        def encode(self, texts, **kwargs):
            x = torch.ones(len(texts), 4) @ torch.eye(4)
            return (x * (2.0 if x.dtype == torch.bfloat16 else 1.0) + torch.arange(4.0)).float().numpy()

    fp32 = encode_cached(Toy(), ["a", "b"], None, cache_dir=tmp_path, fingerprint="toy", show_progress_bar=False)
    with environment.autocast("bf16", "cpu"):
        assert model_fingerprint(Toy(), "toy") == "toy+autocast-cpu-bfloat16"
        bf16 = encode_cached(Toy(), ["a", "b"], None, cache_dir=tmp_path, fingerprint="toy", show_progress_bar=False)
    assert model_fingerprint(Toy(), "toy") == "toy"
    assert not (fp32 == bf16).all()  # bf16 was encoded, not read back from the fp32 entry
