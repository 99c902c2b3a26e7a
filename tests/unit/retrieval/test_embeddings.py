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


def test_the_next_model_with_the_same_tokenizer_reuses_the_tokenised_batches(xquad_small, monkeypatch):
    """Every system of a grid encodes the same test texts: the second model tokenises nothing, and its embeddings
    are bit for bit the ones tokenising again gives. Another prompt, cut-off or padding side tokenises anew;
    training batches (outside inference mode) are never reused; the hook is gone after the encode, even a failed one."""
    import torch

    from hybridir_utils.models import backends, loading

    monkeypatch.setattr(backends, "_FEATURES", {})
    texts = xquad_small.candidates.text.tolist()[:40]
    first, second = loading.load_encoder(loading.E5_NAME), loading.load_encoder(loading.E5_NAME)
    calls: list[int] = []  # the batches tokenised (not the one-text prompt-length calls)
    for model in (first, second):
        tokenise = model[0].preprocess
        counted = lambda i, *a, _t=tokenise, **k: (len(i) > 1 and calls.append(1)) or _t(i, *a, **k)  # noqa: E731
        monkeypatch.setattr(model[0], "preprocess", counted)

    def encode(model, prompt="passage"):
        return embeddings.encode_cached(model, texts, prompt, batch_size=16, use_cache=False, show_progress_bar=False)

    key = backends._tokenizer_key(first.tokenizer)
    a = encode(first)
    assert len(calls) == 3  # 40 texts in batches of 16
    assert backends._tokenizer_key(first.tokenizer) == key  # the last call's truncation and padding are not keyed
    b = encode(second)
    assert len(calls) == 3 and "preprocess" not in vars(second)  # nothing tokenised; the hook removed
    np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(backends, "_FEATURES", {})
    np.testing.assert_array_equal(encode(second), b)  # tokenised again: the same bits
    assert len(calls) == 6
    encode(second, "query")
    assert len(calls) == 9  # another prompt: other features
    second.max_seq_length = 8
    short = encode(second)
    assert len(calls) == 12 and not np.array_equal(short, b)  # another cut-off: other features
    second.tokenizer.padding_side = "left"
    encode(second)
    assert len(calls) == 15  # the tokenizer pads on the other side: other features
    second.tokenizer.padding_side = "right"
    with backends.reused_features(second):
        second.preprocess(texts[:4])
        second.preprocess(texts[:4])
        assert len(calls) == 17  # not in inference mode (a training batch): tokenised every time
        with torch.inference_mode():
            second.preprocess(texts[:4]), second.preprocess(texts[:4])
        assert len(calls) == 18
    with pytest.raises(RuntimeError), backends.reused_features(second):  # nested, then a failing encode
        outer = second.preprocess
        with backends.reused_features(second):
            assert second.preprocess is not outer
        assert second.preprocess is outer  # the inner exit gave the outer hook back
        raise RuntimeError("encode failed")
    assert "preprocess" not in vars(second)  # removed all the same
    monkeypatch.setattr(backends, "_FEATURES", {})
    monkeypatch.setattr(backends, "_MEMO_TEXTS", 20)  # bounded: a batch that would pass the bound starts it again
    encode(first)
    (memo,) = backends._FEATURES.values()
    assert memo.n_texts == 8 and len(memo.batches) == 1
    (kept,) = memo.batches.values()  # the model's outputs were added to the caller's copy, not to the kept features
    assert "input_ids" in kept and "sentence_embedding" not in kept and "token_embeddings" not in kept
