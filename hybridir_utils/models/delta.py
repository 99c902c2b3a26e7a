"""Save a fine-tuned model as its difference from the base model, and load it back bit for bit.

With frozen word embeddings (the project default) a trained e5-small shares its 96M-parameter embedding matrix
(most of ``model.safetensors``) with the base model, bit for bit. Saving it again for every run made the ``cpu``
grid's disk mostly copies of the base. :func:`slim` drops every tensor that is bitwise equal to the base model's and
records, in ``hybridir_base.json``, the base model's name and an xxh3 hash of each dropped tensor;
:func:`restore` (called by ``models.load_encoder`` for such a folder) copies them back from the base and checks
the hashes, so a slim model loads to exactly the weights it was trained to, or fails naming the mismatch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import xxhash

from hybridir_utils.errors import DeltaError
from hybridir_utils.utils import atomic

log = logging.getLogger(__name__)

MANIFEST = "hybridir_base.json"
WEIGHTS = "model.safetensors"  # the transformer module's weights (sentence-transformers module path "")


# Loads a base model by name (``models.loading.load_base``): passed in, since ``models`` itself loads slim folders
BaseLoader = Callable[[str], object]


def _digest(tensor) -> str:
    import torch

    t = tensor.detach().to("cpu").contiguous()
    return xxhash.xxh3_128(t.reshape(-1).view(torch.uint8).numpy()).hexdigest()


def same_bits(a, b) -> bool:
    import torch

    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    a, b = a.detach().to("cpu").contiguous(), b.detach().to("cpu").contiguous()
    return torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))


def transformer_backbone(model):
    """The Hugging Face model inside a SentenceTransformer (its first module)."""
    first = model[0]
    backbone = getattr(first, "auto_model", None) or getattr(first, "model", None)
    if backbone is None:
        raise TypeError(f"cannot find a transformer in the first module {type(first).__name__} of the model")
    return backbone


def _backbone_state(encoder) -> dict:
    return transformer_backbone(encoder).state_dict()


def slim(model_dir: str | Path, base: str, load_base: BaseLoader) -> dict[str, int]:
    """Drop from ``model_dir/model.safetensors`` every tensor bitwise equal to ``base``'s; returns byte counts.

    ``base`` is a name ``load_base`` (``models.loading.load_base``) loads: the run's ``TrainConfig.model``. Nothing is
    dropped, and no manifest written, when no tensor is shared (e.g. full fine-tuning).
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    weights = Path(model_dir) / WEIGHTS
    base_state = _backbone_state(load_base(base))
    kept, dropped, sizes = {}, {}, {"kept_bytes": 0, "dropped_bytes": 0}
    with safe_open(str(weights), "pt") as f:
        metadata = f.metadata()
        for key in f.keys():
            tensor = f.get_tensor(key)
            nbytes = tensor.numel() * tensor.element_size()
            if key in base_state and same_bits(tensor, base_state[key]):
                dropped[key] = {"dtype": str(tensor.dtype), "shape": list(tensor.shape), "xxh3": _digest(tensor)}
                sizes["dropped_bytes"] += nbytes
            else:
                kept[key] = tensor
                sizes["kept_bytes"] += nbytes
    if not dropped:
        return sizes
    atomic.atomic_write(weights, lambda p: save_file(kept, str(p), metadata=metadata))
    why = "tensors bitwise equal to the base model's: loaded from it and hash-checked (hybridir_utils.models.delta)"
    atomic.write_json(Path(model_dir) / MANIFEST, {"base": base, "tensors": dropped, "why": why})
    return sizes


def is_slim(model_dir: str | Path) -> bool:
    return (Path(model_dir) / MANIFEST).is_file()


@contextmanager
def _quiet_missing_weights():
    """transformers warns about (and randomly initialises) the weights a slim file lacks: restore() fills them."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def load(model_dir: Path, load_base: BaseLoader, device: str | None = None):
    """A SentenceTransformer from a slim folder, with the dropped tensors restored from its base."""
    from sentence_transformers import SentenceTransformer

    with _quiet_missing_weights():
        model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)
    restore(model, model_dir, load_base)
    return model


def restore(model, model_dir: str | Path, load_base: BaseLoader) -> None:
    """Copy the tensors listed in ``hybridir_base.json`` from the base model into ``model``, hash-checked."""
    import torch

    manifest = atomic.read_json(Path(model_dir) / MANIFEST)
    base_state = _backbone_state(load_base(manifest["base"]))
    target = _backbone_state(model)
    with torch.no_grad():
        for key, meta in manifest["tensors"].items():
            source = base_state.get(key)
            if source is None or _digest(source) != meta["xxh3"]:
                raise DeltaError(
                    f"{model_dir}: tensor {key} of base {manifest['base']!r} is "
                    f"{'missing' if source is None else 'not the one this model was trained from'} (saved against "
                    f"xxh3 {meta['xxh3']}); load the same base (e.g. HYBRIDIR_E5_SOURCE) or retrain"
                )
            target[key].copy_(source.to(target[key].device))
    log.info("restored %d tensor(s) of %s from its base %s", len(manifest["tensors"]), model_dir,
             json.dumps(manifest["base"]))  # fmt: skip
