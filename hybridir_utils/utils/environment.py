"""Where a number was computed: device, precision, library versions and the CPU's instruction-set flags.

Every training run, evaluation and benchmark records :func:`describe`, because results differ by hardware and
precision: bf16 changes embeddings in the fourth decimal, and CPUs differ in whether they have bf16 at all
(AVX512-BF16 or AMX). :func:`resolve_precision` turns a profile's ``precision`` into what actually runs, and
:func:`autocast` applies it to encoding.
"""

from __future__ import annotations

import contextlib
import functools
import json
import platform
from pathlib import Path
from typing import Any

from hybridir_utils.errors import PrecisionError
from hybridir_utils.utils import paths

PRECISIONS = ("fp32", "bf16", "auto")
# Flags that decide CPU speed paths: bf16 matrix units (AMX, AVX512-BF16), AVX-512, AVX2.
_CPU_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx512_vnni", "avx2", "fma")
BF16_MAX_MAP_CHANGE = 0.005  # `auto` uses bf16 on a CPU only where `bench throughput` measured at most this


@functools.cache
def cpu_info() -> dict[str, Any]:
    """CPU model name and the speed-relevant flags of this machine (from /proc/cpuinfo; empty elsewhere)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {"cpu_model": fields.get("model name", platform.processor() or platform.machine()),
            "cpu_flags": [f for f in _CPU_FLAGS if f in flags]}  # fmt: skip


def cpu_has_bf16() -> bool:
    return bool({"amx_bf16", "avx512_bf16"} & set(cpu_info()["cpu_flags"]))


def device() -> str:
    """``cuda`` when a GPU is visible to torch, else ``cpu``: where training and encoding run by default."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def describe(precision: str | None = None) -> dict[str, Any]:
    """What a result needs beside it to be compared: device, GPU, precision, versions, CPU flags."""
    import sentence_transformers
    import torch
    import transformers

    dev = device()
    return {"device": dev, "gpu": torch.cuda.get_device_name(0) if dev == "cuda" else None,
            "precision": precision, "tf32": dev == "cuda" and torch.backends.cuda.matmul.allow_tf32,
            "torch": torch.__version__, "cuda": torch.version.cuda if dev == "cuda" else None,
            "transformers": transformers.__version__, "sentence_transformers": sentence_transformers.__version__,
            "python": platform.python_version(), **cpu_info()}  # fmt: skip


def precision_verdict_file() -> Path:
    """Where ``bench throughput`` records whether bf16 kept mAP on this kind of CPU: one file per CPU model, flags
    and torch version (model names like "Intel(R) Xeon(R) Processor" alone cover very different machines)."""
    import hashlib

    import torch

    info = cpu_info()
    name = "".join(c if c.isalnum() else "-" for c in info["cpu_model"]).strip("-")[:60] or "unknown"
    digest = hashlib.sha1(json.dumps([info, torch.__version__], sort_keys=True).encode()).hexdigest()[:10]
    return paths.cache_dir() / "bench" / f"bf16-verdict-{name}-{digest}.json"


def bf16_verified_on_cpu() -> bool:
    """True only where a benchmark on this CPU model found bf16's mAP change within ``BF16_MAX_MAP_CHANGE``."""
    path = precision_verdict_file()
    if not cpu_has_bf16() or not path.is_file():
        return False
    verdict = json.loads(path.read_text())
    return abs(float(verdict.get("map_change", 1.0))) <= BF16_MAX_MAP_CHANGE


def gpu_has_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_precision(precision: str, dev: str | None = None, training: bool = False) -> str:
    """``fp32`` or ``bf16``: what runs for a requested precision on ``dev`` (default: this machine's device).

    ``auto`` is bf16 on a GPU with bf16 (Ampere or later), and on a CPU for encoding only, with bf16 instructions
    and a passing benchmark verdict (:func:`bf16_verified_on_cpu`, which measured encoding, not training); fp32
    elsewhere. An explicit ``bf16`` on a device without bf16 is an error.
    """
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision {precision!r} is not one of {PRECISIONS}")
    dev = dev or device()
    if precision == "auto":
        if dev == "cuda":
            return "bf16" if gpu_has_bf16() else "fp32"
        return "bf16" if not training and bf16_verified_on_cpu() else "fp32"
    if precision == "bf16" and dev == "cpu" and not cpu_has_bf16():
        raise PrecisionError(f"precision 'bf16' asked for, but this CPU ({cpu_info()['cpu_model']}) has no bf16 units")
    if precision == "bf16" and dev == "cuda" and not gpu_has_bf16():
        raise PrecisionError("precision 'bf16' asked for, but this GPU has no bf16 support (before Ampere)")
    return precision


def autocast_tag() -> str:
    """``""`` outside autocast, else e.g. ``"+autocast-cuda-bfloat16"``: part of every embedding-cache key, so bf16
    and fp32 embeddings of the same model and text are never mixed up (the weights' fingerprint is the same)."""
    import torch

    active = [f"{d}-{str(torch.get_autocast_dtype(d)).removeprefix('torch.')}" for d in ("cpu", "cuda")
              if torch.is_autocast_enabled(d)]  # fmt: skip
    return "+autocast-" + "-".join(active) if active else ""


def autocast(precision: str, dev: str | None = None):
    """A bf16 autocast context for ``precision == "bf16"`` (encoding), a no-op for fp32."""
    import torch

    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(dev or device(), dtype=torch.bfloat16)
