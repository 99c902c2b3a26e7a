"""The embedding cache (:mod:`retrieval.embeddings`): only missing texts are encoded, per prompt; a damaged
cache file is named, re-encoded and rewritten, never scored."""

from __future__ import annotations

import numpy as np
import pytest
from doubles import HashEncoder

from hybridir_utils.retrieval import embeddings


def test_encode_cached_encodes_only_missing_texts(tmp_path):
    enc = HashEncoder()
    stats: dict = {}
    a = embeddings.encode_cached(enc, ["alpha", "beta", "alpha"], "query", cache_dir=tmp_path, stats=stats)
    assert enc.n_encoded == 2 and stats == {"n_texts": 3, "n_encoded": 2, "n_cached": 0}  # duplicates once
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(a[0], a[2])
    b = embeddings.encode_cached(enc, ["gamma", "beta", "alpha"], "query", cache_dir=tmp_path)
    assert enc.n_encoded == 3  # only "gamma" was new
    np.testing.assert_array_equal(b[1:], a[[1, 0]])
    embeddings.encode_cached(enc, ["alpha"], "passage", cache_dir=tmp_path)
    assert enc.n_encoded == 4  # another prompt is another cache
    embeddings.encode_cached(enc, ["alpha"], "query", cache_dir=tmp_path, use_cache=False)
    assert enc.n_encoded == 5
    fresh = HashEncoder()
    np.testing.assert_allclose(b, embeddings._normalise(fresh.encode(["gamma", "beta", "alpha"]), "x"), rtol=1e-6)


def _rewrite_cache(path, change) -> None:
    with np.load(path) as z:
        keys, emb = z["keys"], z["emb"]
    keys, emb = change(keys, emb.copy())
    with open(path, "wb") as fh:
        np.savez(fh, keys=keys, emb=emb)


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (lambda p: p.write_bytes(b"not a zip"), "unreadable"),
        (lambda p: p.write_bytes(b""), "unreadable"),  # was a bare EOFError without the path
        (lambda p: _rewrite_cache(p, lambda k, e: (k, np.full_like(e, np.nan))), "NaN or infinite"),
        (lambda p: _rewrite_cache(p, lambda k, e: (k, e * 7)), "not of unit norm"),
        (lambda p: _rewrite_cache(p, lambda k, e: (k, e[:, :32] / np.linalg.norm(e[:, :32], axis=1, keepdims=True))),
         "dimension 32, the model gives 64"),
        (lambda p: _rewrite_cache(p, lambda k, e: (k[:1], e)), "1 keys but embeddings of shape"),
    ],
)  # fmt: skip
def test_bad_cache_file_is_named_and_re_encoded_never_scored(tmp_path, damage, needle):
    """Issue 12 defect 4: NaN rows scored mAP 1.0 / 1.5, rows times 7 came back with norm 7, a 0-byte file raised a
    bare EOFError. Now the file is named, its texts re-encoded and the file rewritten."""
    enc = HashEncoder()
    enc.get_sentence_embedding_dimension = lambda: 64
    texts = ["alpha", "beta", "gamma"]
    good = embeddings.encode_cached(enc, texts, "query", cache_dir=tmp_path)
    (path,) = tmp_path.rglob("*.npz")
    damage(path)
    with pytest.warns(UserWarning, match=rf"embedding cache {path}: .*{needle}.*re-encoded"):
        again = embeddings.encode_cached(enc, texts, "query", cache_dir=tmp_path)
    np.testing.assert_array_equal(again, good)
    assert enc.n_encoded == 6
    embeddings.encode_cached(enc, texts, "query", cache_dir=tmp_path)  # the rewritten file is good: nothing re-encoded
    assert enc.n_encoded == 6
