"""Who an encoder is: its behaviour's fingerprint (keys embedding caches and ONNX graphs) and its display name.

Apart from :mod:`models.loading` so that ``loading``, ``backends`` and ``retrieval.embeddings`` can all import
it without a cycle.
"""

from __future__ import annotations

import json
from typing import Any

import xxhash


def encoder_name(encoder) -> str:
    """A short display name for results tables (not part of the fingerprint)."""
    name = getattr(encoder, "hybridir_name", None)
    if name:
        return str(name)
    card = getattr(encoder, "model_card_data", None)
    return str(getattr(card, "base_model", None) or type(encoder).__name__)


def _pipeline_description(model) -> dict[str, Any]:
    """What besides the weights decides the embeddings: module types and configs, prompts, tokenizer, length."""
    modules = []
    for module in model:
        cfg = module.get_config_dict() if hasattr(module, "get_config_dict") else {}
        modules.append([f"{type(module).__module__}.{type(module).__qualname__}", cfg])
    tok = getattr(model, "tokenizer", None)
    return {
        "modules": modules,
        "prompts": dict(sorted((k, v) for k, v in model.prompts.items() if v)),
        "max_seq_length": model.max_seq_length,
        "tokenizer": [type(tok).__name__, len(tok) if tok is not None else 0],
    }


def fingerprint(encoder) -> str:
    """Stable id of an encoder's behaviour: hash of its weights and pipeline (modules, prompts, tokenizer).

    The display name and folder are deliberately left out: identical weights give identical fingerprints wherever
    the model lives (a reloaded or copied model keeps its embedding cache), while any weight change, e.g. one
    fine-tuning step, changes it. Recomputed on every call
    (xxh3 over a model's weights is cheap next to loading or encoding with it) because in-place updates through
    ``param.data`` bypass torch's version counters, so any cached value could silently go stale.
    """
    import torch  # heavy: imported when a model is fingerprinted, not with the toolkit

    if not isinstance(encoder, torch.nn.Module) and callable(getattr(encoder, "fingerprint", None)):
        return encoder.fingerprint()  # e.g. USEEncoder

    h = xxhash.xxh3_128()
    h.update(json.dumps(_pipeline_description(encoder), sort_keys=True, default=str).encode())
    backend_id = getattr(encoder, "hybridir_backend_id", None)
    if backend_id:
        # A converted (ONNX / int8) encoder: its weights live outside the state dict or are packed, so it is keyed
        # by the source model's fingerprint plus the backend and its settings (see backends.apply_backend).
        h.update(json.dumps(backend_id, sort_keys=True, default=str).encode())
        return f"st-{backend_id['backend']}-{h.hexdigest()[:24]}"
    for key, tensor in encoder.state_dict().items():
        t = tensor.detach()
        h.update(f"\0{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())
    return f"st-{h.hexdigest()[:24]}"
