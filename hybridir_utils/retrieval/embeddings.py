"""Embeddings of texts: the on-disk cache (model fingerprint, prompt, sha1(text) -> row) and :func:`encode_cached`.

Each text is encoded once per (model, prompt) and kept under
``paths.embeddings_dir()/<fingerprint>/<prompt>-<prompt hash>.npz``, so re-evaluating the same model and texts
encodes nothing; only missing texts are encoded. Every embedding, fresh or cached, is checked (finite, unit norm,
the model's dimension) and L2-normalised float32. Used by the LAReQA and MIRACL evaluations, domains and benchmarks.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hybridir_utils.errors import EvaluationError
from hybridir_utils.models.fingerprints import encoder_name
from hybridir_utils.models.fingerprints import fingerprint as _fingerprint
from hybridir_utils.utils import atomic, paths
from hybridir_utils.utils.environment import autocast_tag


def model_fingerprint(encoder, fingerprint: str | None = None) -> str:
    """``fingerprint`` if given, else :func:`models.fingerprints.fingerprint` (weights + pipeline hash);
    under autocast with the precision appended (:func:`environment.autocast_tag`), so the cache keeps bf16 and fp32
    embeddings apart."""
    fp, tag = (str(fingerprint) if fingerprint else _fingerprint(encoder)), autocast_tag()
    return fp if fp.endswith(tag) else fp + tag  # a fingerprint taken under the same autocast already has it


def model_name(encoder) -> str:
    return encoder_name(encoder)


def _prompt_args(encoder, prompt_name: str | None) -> tuple[dict, str]:
    """encode() kwargs for the prompt, and the prompt text that keys the cache.

    A sentence-transformers model without that prompt would raise, so the prompt is then dropped (the model has
    no prompts: all texts are encoded plainly, and the cache key says so).
    """
    if not prompt_name:
        return {}, ""
    prompts = getattr(encoder, "prompts", None)
    if isinstance(prompts, Mapping):
        if prompts.get(prompt_name):
            return {"prompt_name": prompt_name}, str(prompts[prompt_name])
        return {}, ""
    return {"prompt_name": prompt_name}, f"<{prompt_name}>"


def _text_keys(texts: Sequence[str]) -> np.ndarray:
    return np.array([hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts], dtype="S40")


class EmbeddingCache:
    """Embeddings of one (model fingerprint, prompt): ``sha1(text) -> float32 row`` in one ``.npz`` file.

    New rows are merged with whatever is on disk at save time, then written atomically; two processes saving
    at once can only lose rows (re-encoded later), never corrupt the file. A file is read as strictly as a fresh
    encode is checked (finite, unit norm, ``dim`` columns, one row per key): a bad one is named in a warning and
    ignored, so its texts are re-encoded and the file rewritten, never scored.
    """

    def __init__(
        self,
        fingerprint: str,
        prompt_name: str,
        prompt: str,
        cache_dir: str | Path | None = None,
        dim: int | None = None,
    ):
        base = Path(cache_dir) if cache_dir is not None else paths.embeddings_dir()
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", fingerprint)
        if safe != fingerprint:
            safe = f"{safe[:60]}-{hashlib.sha1(fingerprint.encode()).hexdigest()[:8]}"
        tag = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8]
        self.path = base / safe / f"{re.sub(r'[^A-Za-z0-9_-]', '_', prompt_name or 'none')}-{tag}.npz"
        self.dim = dim
        self.keys, self.emb = self._read()
        self._new_keys: list[np.ndarray] = []
        self._new_emb: list[np.ndarray] = []

    def _read(self, warn: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        empty = np.empty(0, dtype="S40"), None
        if not self.path.is_file():
            return empty
        try:
            with np.load(self.path, allow_pickle=False) as z:
                keys, emb = z["keys"], z["emb"]
            problem = self._problem(keys, emb)
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            problem = f"unreadable ({type(exc).__name__}: {exc})"
        if problem is None:
            return keys, emb
        if warn:
            warnings.warn(f"embedding cache {self.path}: {problem}; ignored, its texts are re-encoded", stacklevel=3)
        return empty

    def _problem(self, keys: np.ndarray, emb: np.ndarray) -> str | None:
        """What is wrong with cached ``keys`` / ``emb``, or None: the same checks as a fresh encode, and more."""
        if keys.dtype != np.dtype("S40") or keys.ndim != 1:
            return f"keys of dtype {keys.dtype} and shape {keys.shape}, expected sha1 hex digests"
        if emb.ndim != 2 or len(keys) != len(emb) or emb.dtype.kind != "f":
            return f"{len(keys)} keys but embeddings of shape {emb.shape} and dtype {emb.dtype}"
        if self.dim is not None and emb.shape[1] != self.dim:
            return f"embeddings of dimension {emb.shape[1]}, the model gives {self.dim}"
        bad = ~np.isfinite(emb).all(axis=1)
        if bad.any():
            return f"{int(bad.sum())} row(s) with NaN or infinite values"
        norms = np.linalg.norm(emb.astype(np.float64), axis=1)
        off = np.abs(norms - 1) > 1e-3
        if off.any():
            return f"{int(off.sum())} row(s) not of unit norm (e.g. {norms[off][0]:.4g})"
        return None

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask, rows of the found keys in order)."""
        if self.emb is None or not len(keys):
            return np.zeros(len(keys), dtype=bool), None
        order = np.argsort(self.keys)
        pos = np.clip(np.searchsorted(self.keys[order], keys), 0, len(order) - 1)
        found = self.keys[order][pos] == keys
        return found, self.emb[order[pos[found]]]

    def add(self, keys: np.ndarray, emb: np.ndarray) -> None:
        self._new_keys.append(keys)
        self._new_emb.append(emb)

    def save(self) -> None:
        if not self._new_keys:
            return
        disk_keys, disk_emb = self._read(warn=False)
        keys = np.concatenate([disk_keys, *self._new_keys])
        parts = ([disk_emb] if disk_emb is not None else []) + self._new_emb
        if len({p.shape[1] for p in parts}) > 1:
            raise EvaluationError(f"{self.path}: cached embeddings have another dimension than the new ones")
        emb = np.concatenate(parts).astype(np.float32, copy=False)
        keys, first = np.unique(keys, return_index=True)
        emb = emb[first]

        def _write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare path
                np.savez(fh, keys=keys, emb=emb)

        atomic.atomic_write(self.path, _write)
        self.keys, self.emb = keys, emb
        self._new_keys, self._new_emb = [], []


def _normalise(emb: np.ndarray, what: str) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise EvaluationError(f"{what}: encoder returned an array of shape {emb.shape}, expected [n, d]")
    if not np.isfinite(emb).all():
        raise EvaluationError(f"{what}: encoder returned NaN or infinite values")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


def _dimension(encoder) -> int | None:
    """The encoder's embedding dimension when it says (sentence-transformers models do), to check cached rows."""
    method = getattr(encoder, "get_embedding_dimension", None) or getattr(
        encoder, "get_sentence_embedding_dimension", None
    )
    try:
        dim = method() if callable(method) else None
    except Exception:  # an encoder whose dimension is unknown (or broken) is simply not checked
        return None
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def encode_cached(
    encoder,
    texts: Sequence[str],
    prompt_name: str | None,
    batch_size: int = 64,
    cache_dir: str | Path | None = None,
    show_progress_bar: bool = True,
    use_cache: bool = True,
    fingerprint: str | None = None,
    stats: dict | None = None,
    chunk_size: int = 1024,
    save_every_s: float = 60.0,
) -> np.ndarray:
    """L2-normalised float32 embeddings of ``texts`` [n, d], encoding only texts missing from the cache.

    The cache key is (``fingerprints.fingerprint(encoder)`` or ``fingerprint``, prompt text, sha1(text)); duplicates are
    encoded once. Encoding goes in chunks of ``chunk_size`` texts with a progress bar, and the cache is saved at
    least every ``save_every_s`` seconds, so an interrupted long encode resumes. ``stats`` (a dict, optional)
    receives ``n_texts``, ``n_encoded`` and ``n_cached`` (added to existing counts).
    """
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise EvaluationError(f"encode_cached: text {bad} is {type(texts[bad]).__name__}, not str")
    kwargs, prompt = _prompt_args(encoder, prompt_name)
    keys = _text_keys(texts)
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    cache = None
    if use_cache:
        fp = model_fingerprint(encoder, fingerprint)
        cache = EmbeddingCache(fp, prompt_name or "", prompt, cache_dir, _dimension(encoder))
    found, rows = cache.lookup(uniq) if cache is not None else (np.zeros(len(uniq), dtype=bool), None)
    missing = np.flatnonzero(~found)
    encode = {"batch_size": batch_size, "chunk_size": chunk_size, "save_every_s": save_every_s}
    fresh = _encode_missing(encoder, [texts[first[i]] for i in missing], uniq[missing], cache, prompt_name, kwargs,
                            show_progress_bar, **encode)  # fmt: skip
    if cache is not None:
        cache.save()
    if stats is not None:
        for key, value in (("n_texts", len(texts)), ("n_encoded", len(missing)), ("n_cached", int(found.sum()))):
            stats[key] = stats.get(key, 0) + value
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    dim = (rows if rows is not None else fresh[0]).shape[1]
    out = np.empty((len(uniq), dim), dtype=np.float32)
    if rows is not None:
        out[found] = rows
    for lo, emb in zip(range(0, len(missing), chunk_size), fresh, strict=True):
        out[missing[lo : lo + chunk_size]] = emb
    return out[inverse]


def encode_queries_and_passages(
    encoder, queries: Sequence[str], passages: Sequence[str], fingerprint: str, **encode
) -> tuple[np.ndarray, np.ndarray]:
    """(query, passage embeddings) of one retrieval task, each text encoded once (cached) with its prompt.

    LAReQA and MIRACL both embed this way. The two sides must share a dimension: an encoder whose towers differ
    fails here, naming it, not later inside the search.
    """
    q_emb = encode_cached(encoder, list(queries), "query", fingerprint=fingerprint, **encode)
    p_emb = encode_cached(encoder, list(passages), "passage", fingerprint=fingerprint, **encode)
    if q_emb.shape[1] != p_emb.shape[1]:
        raise EvaluationError(f"query dim {q_emb.shape[1]} != passage dim {p_emb.shape[1]}")
    return q_emb, p_emb


def _encode_missing(encoder, texts: list[str], keys: np.ndarray, cache: EmbeddingCache | None, prompt_name, kwargs,
                    show_progress_bar: bool, *, batch_size: int, chunk_size: int, save_every_s: float):  # fmt: skip
    """Encode ``texts`` in chunks of ``chunk_size`` (checked, normalised), adding them to ``cache`` and saving it at
    least every ``save_every_s`` seconds; returns the chunks' embeddings in order. Batches another model with the
    same tokenizer already tokenised are not tokenised again (:func:`models.backends.reused_features`)."""
    from hybridir_utils.models.backends import reused_features  # torch: only where something is encoded

    chunks: list[np.ndarray] = []
    last_save = time.monotonic()
    desc = f"encode {prompt_name or 'texts'}"
    with (tqdm(total=len(texts), desc=desc, unit="text", disable=not show_progress_bar or not texts) as bar,
          reused_features(encoder) if texts else contextlib.nullcontext()):  # fmt: skip
        for lo in range(0, len(texts), chunk_size):
            batch = texts[lo : lo + chunk_size]
            emb = encoder.encode(batch, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                 show_progress_bar=False, **kwargs)  # fmt: skip
            emb = _normalise(emb, f"encoding {len(batch)} texts ({prompt_name})")
            if len(emb) != len(batch):
                raise EvaluationError(f"encoder returned {len(emb)} embeddings for {len(batch)} texts")
            chunks.append(emb)
            if cache is not None:
                cache.add(keys[lo : lo + chunk_size], emb)
                if time.monotonic() - last_save > save_every_s:
                    cache.save()
                    last_save = time.monotonic()
            bar.update(len(batch))
    return chunks
