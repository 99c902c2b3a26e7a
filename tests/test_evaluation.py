"""LAReQA evaluation: hand-computed metrics (ties, several relevant), caching, TREC files re-scored independently
(:mod:`hybridir_utils.trec_rescore`, whose own tests are in test_trec_rescore.py)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridir_utils import embeddings, lareqa, search, trec, trec_rescore
from hybridir_utils.data import LAReQAData
from hybridir_utils.io import read_json

# ----------------------------------------------------------------------------------------------- test doubles


class HashEncoder:
    """Deterministic character-trigram hashing encoder: cheap, and similar texts get similar vectors."""

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.n_encoded = 0

    def fingerprint(self) -> str:
        return f"hash-trigram-{self.dim}"

    def encode(self, texts, prompt_name=None, batch_size=32, **kwargs):
        self.n_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for j in range(len(padded) - 2):
                h = int.from_bytes(hashlib.md5(padded[j : j + 3].encode()).digest()[:4], "little")
                out[i, h % self.dim] += 1.0
        return out


class AngleEncoder:
    """Maps each text to a unit vector at a fixed angle (degrees): rankings follow from the angles by hand."""

    def __init__(self, angles: dict[str, float]):
        self.angles = angles
        self.n_encoded = 0

    def fingerprint(self) -> str:
        return "angles-" + hashlib.sha1(repr(sorted(self.angles.items())).encode()).hexdigest()[:8]

    def encode(self, texts, prompt_name=None, **kwargs):
        self.n_encoded += len(texts)
        rad = np.radians([self.angles[t] for t in texts])
        return np.stack([np.cos(rad), np.sin(rad)], axis=1).astype(np.float32)


def _toy() -> tuple[LAReQAData, AngleEncoder]:
    """Two groups in en/de. The en and de candidates 'SAME' share a text, hence an exact score tie."""
    cands = [  # cid, text, angle
        ("en:0:0:0", "E0", 0),
        ("en:0:0:1", "E1", 40),
        ("en:0:0:2", "SAME", 70),
        ("de:0:0:0", "D0", 12),
        ("de:0:0:1", "D1", 100),
        ("de:0:0:2", "SAME", 70),
    ]
    questions = [  # qid, group, lang, text, angle, answer
        ("en:g1", "g1", "en", "qe1", 5, "en:0:0:0"),
        ("de:g1", "g1", "de", "qd1", 30, "de:0:0:0"),
        ("en:g2", "g2", "en", "qe2", 75, "en:0:0:2"),
        ("de:g2", "g2", "de", "qd2", 90, "de:0:0:1"),
    ]
    q = pd.DataFrame(
        [(qid, g, lang, text, "Toy", "0:0", ans) for qid, g, lang, text, _, ans in questions],
        columns=["qid", "group", "lang", "text", "article", "paragraph", "answer_cid"],
    )
    c = pd.DataFrame(
        [(cid, cid[:2], text, "ctx", "Toy", "0:0") for cid, text, _ in cands],
        columns=["cid", "lang", "text", "context", "article", "paragraph"],
    )
    answers = {"g1": frozenset({"en:0:0:0", "de:0:0:0"}), "g2": frozenset({"en:0:0:2", "de:0:0:1"})}
    relevant = {qid: answers[g] for qid, g, *_ in questions}
    angles = {text: a for _, text, a in cands} | {text: a for _, _, _, text, a, _ in questions}
    return LAReQAData("xquad-r", ("en", "de"), q, c, relevant), AngleEncoder(angles)


# ----------------------------------------------------------------------------------------------- metric primitives


def test_ap_recall_hand_cases():
    m = search.ap_recall(np.array([[1, 3], [2, np.nan], [np.nan, np.nan], [12, 11]]))
    assert m["ap"][0] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert m["ap"][1] == pytest.approx(0.5)
    assert math.isnan(m["ap"][2]) and m["n_relevant"][2] == 0
    assert m["ap"][3] == pytest.approx((1 / 11 + 2 / 12) / 2)  # ranks are sorted before precision is taken
    np.testing.assert_allclose(m["r1"][:2], [0.5, 0.0])
    np.testing.assert_allclose(m["r10"][[0, 1, 3]], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(m["first_rank"][[0, 1, 3]], [1, 2, 11])


def test_ordering_and_ranks_break_ties_by_descending_id():
    # candidates a..e (tie keys 0..4); three share score 0.5: trec_eval orders them d, c, a
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]], dtype=np.float32)
    tie = np.arange(5)
    np.testing.assert_array_equal(search.ordered_prefix(scores, tie, 5)[0], [1, 3, 2, 0, 4])
    np.testing.assert_array_equal(search.ordered_prefix(scores, tie, 2)[0], [1, 3])  # the cut falls inside the tie
    above = search.ranks_of(scores, tie, np.array([[0, 2, 3, -1]]), bounds=np.array([0, 2, 5]))
    assert above.sum(axis=2)[0].tolist() == [3, 2, 1, 0]  # ranks 4, 3, 2; padding counts nothing
    assert above[0, 0].tolist() == [1, 2]  # above 'a': b in segment 0, c and d in segment 1


def test_faiss_flat_search_matches_exhaustive_order():
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((300, 16)).astype(np.float32)
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    _, ids = search.faiss_search(queries, docs, 10)
    np.testing.assert_array_equal(ids, search.ordered_prefix(queries @ docs.T, np.arange(300), 10))
    _, ann = search.faiss_search(queries, docs, 10, index="hnsw")
    assert search.ann_recall(ids, ann) > 0.9
    with pytest.raises(lareqa.EvaluationError, match="unknown index"):
        search.faiss_search(queries, docs, 10, index="ivf")


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=2, max_size=12).flatmap(
        lambda s: st.tuples(st.just(s), st.lists(st.booleans(), min_size=len(s), max_size=len(s)))
    )
)
def test_ranks_and_ap_agree_with_pytrec_eval(case):
    """Property: on any ranking (small integer scores: many ties) our AP/R@k equal trec_eval's."""
    import pytrec_eval

    values, rel = case
    if not any(rel):
        rel[0] = True
    scores = np.array([values], dtype=np.float32)
    docids = [f"d{i:02d}" for i in range(len(values))]
    targets = np.array([[i for i, r in enumerate(rel) if r]])
    ranks = search.ranks_of(scores, np.arange(len(values)), targets, np.array([0, len(values)])).sum(axis=2) + 1
    ours = search.ap_recall(ranks.astype(float))
    qrels = {"q": {d: 1 for d, r in zip(docids, rel, strict=True) if r}}
    run = {"q": {d: float(v) for d, v in zip(docids, values, strict=True)}}
    theirs = pytrec_eval.RelevanceEvaluator(qrels, {"map", "recall.1,10"}).evaluate(run)["q"]
    assert ours["ap"][0] == pytest.approx(theirs["map"], abs=1e-12)
    assert ours["r1"][0] == pytest.approx(theirs["recall_1"])
    assert ours["r10"][0] == pytest.approx(theirs["recall_10"])


# ----------------------------------------------------------------------------------------------- hand-computed LAReQA


def test_evaluate_lareqa_hand_computed(tmp_path):
    ds, encoder = _toy()
    m = lareqa.evaluate_lareqa(encoder, ds, tmp_path / "out", cache_dir=tmp_path / "cache", show_progress_bar=False)
    # multi: qe1 ranks {1, 2}; qd1 {2, 3}; qe2 {1, 3} (the en 'SAME' wins its tie with de 'SAME'); qd2 {1, 2}
    per_query = pd.read_parquet(tmp_path / "out" / "per_query.parquet").set_index(["qid", "pool_lang"])
    expected_multi = {"en:g1": 1.0, "de:g1": (1 / 2 + 2 / 3) / 2, "en:g2": (1 + 2 / 3) / 2, "de:g2": 1.0}
    for qid, ap in expected_multi.items():
        assert per_query.loc[(qid, "multi"), "ap"] == pytest.approx(ap)
    assert m["multi_map"] == pytest.approx(((1 + (1 + 2 / 3) / 2) / 2 + ((1 / 2 + 2 / 3) / 2 + 1) / 2) / 2)
    assert m["multi_r1"] == pytest.approx((0.5 + 0.25) / 2)
    assert m["mono_map"] == pytest.approx(1.0)
    # cross: en->de qe1 1, qe2 1/2 ; de->en qd1 1/2, qd2 1
    assert m["cross_map"] == pytest.approx(0.75)
    assert per_query.loc[("en:g2", "de"), "first_rank"] == 2
    # rank distance: en (1 + 2) / 2, de (1 + 1) / 2
    assert m["rank_distance_by_lang"] == {"de": 1.0, "en": 1.5}
    assert m["rank_distance"] == pytest.approx(1.25)
    assert m["n_pairs"] == {"mono": 2, "cross": 2, "multi": 2}
    assert m["pool_sizes"] == {"en": 3, "de": 3, "multi": 6}
    # the run lists the tie in trec_eval's order, and pytrec_eval re-scoring agrees
    report = trec_rescore.independent_rescore(tmp_path / "out")
    assert report["agrees"] and report["multi"]["max_abs_diff"]["rank_distance"] == 0
    run = trec.read_trec_run(tmp_path / "out" / "runs" / "multi.trec.gz")
    first = run[run.qid == "en:g2"].sort_values("rank").docid.tolist()
    assert first[:3] == ["en:0:0:2", "de:0:0:2", "de:0:0:1"]


def test_metrics_json_schema_and_files(tmp_path):
    ds, encoder = _toy()
    lareqa.evaluate_lareqa(
        encoder,
        ds,
        tmp_path,
        settings=("multi", "mono"),
        show_progress_bar=False,
        cache_dir=tmp_path / "cache",
        run_depth=None,
    )
    m = read_json(tmp_path / "metrics.json")
    for key in ("model", "fingerprint", "dataset", "languages", "mono_map", "multi_map", "rank_distance", "timings"):
        assert key in m
    assert "cross_map" not in m and m["settings"] == ["mono", "multi"]
    assert set(m["timings"]) == {"fingerprint", "encode", "search", "metric", "write", "total"}
    assert m["run_cut"]["depth"] is None and m["run_cut"]["lines"] == {"mono": 4 * 3, "multi": 4 * 6}
    for rel in [m["files"]["per_query"], m["files"]["per_pair"], *m["files"]["runs"].values()]:
        assert (tmp_path / rel).is_file()
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporaries
    pairs = pd.read_parquet(tmp_path / m["files"]["per_pair"])
    assert set(pairs.setting) == {"mono", "multi"} and (pairs.n_queries == 2).all()


def test_bad_inputs_raise_clear_errors(tmp_path):
    ds, encoder = _toy()
    with pytest.raises(lareqa.EvaluationError, match="unknown setting"):
        lareqa.evaluate_lareqa(encoder, ds, tmp_path, settings=("pairs",))
    with pytest.raises(lareqa.EvaluationError, match="domain_of lacks 1 article"):
        lareqa.evaluate_lareqa(encoder, ds, tmp_path, domain_of={"Other": "science"}, cache_dir=tmp_path)
    with pytest.raises(lareqa.EvaluationError, match="write_runs names setting"):
        lareqa.evaluate_lareqa(encoder, ds, tmp_path, settings=("mono",), write_runs=("multi",), cache_dir=tmp_path)
    broken = LAReQAData(ds.name, ds.languages, ds.questions, ds.candidates, {**ds.relevant, "en:g1": frozenset({"x"})})
    with pytest.raises(lareqa.EvaluationError, match="'x' of 'en:g1' is not a pool candidate"):
        lareqa.evaluate_lareqa(encoder, broken, tmp_path, cache_dir=tmp_path, show_progress_bar=False)


# ----------------------------------------------------------------------------------------------- cache


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


def test_ap_outside_unit_interval_is_refused():
    """Issue 12 defect 4: AP and mAP lie in [0, 1] by construction; broken (duplicate) ranks must not score 1.5."""
    with pytest.raises(lareqa.EvaluationError, match=r"AP 1\.5 outside \[0, 1\]"):
        search.ap_recall(np.array([[1, 1]]))


def test_second_evaluation_encodes_nothing(tmp_path, xquad_small, tmp_cache):
    enc = HashEncoder()
    first = lareqa.evaluate_lareqa(enc, xquad_small, tmp_path / "a", show_progress_bar=False)
    encoded = enc.n_encoded
    assert encoded == first["encoding"]["n_encoded"] > 0
    second = lareqa.evaluate_lareqa(enc, xquad_small, tmp_path / "b", show_progress_bar=False)
    assert enc.n_encoded == encoded and second["encoding"]["n_encoded"] == 0
    assert any(tmp_cache.rglob("*.npz"))  # under config.embeddings_dir() of the temporary cache
    for key in ("mono_map", "cross_map", "multi_map", "rank_distance"):
        assert first[key] == second[key]


# ----------------------------------------------------------------------------------------------- real data


def test_xquad_small_real_data_and_independent_rescore(tmp_path, xquad_small):
    enc = HashEncoder()
    domains = {a: ("sport" if i % 2 else "science") for i, a in enumerate(sorted(set(xquad_small.questions.article)))}
    m = lareqa.evaluate_lareqa(
        enc, xquad_small, tmp_path, domain_of=domains, cache_dir=tmp_path / "c", show_progress_bar=False
    )
    n_q = len(xquad_small.questions) // 3
    assert m["n_pairs"] == {"mono": 3, "cross": 6, "multi": 3}
    assert m["n_queries"] == {"mono": 3 * n_q, "cross": 6 * n_q, "multi": 3 * n_q}
    per_query = pd.read_parquet(tmp_path / "per_query.parquet")
    # relevance sets are the dataset's own: one answer per language in pairs, all parallel answers in multi
    sample = per_query.sample(40, random_state=0)
    for row in sample.itertuples():
        expected = (
            xquad_small.relevant[row.qid]
            if row.pool_lang == "multi"
            else (xquad_small.relevant_in(row.qid, row.pool_lang))
        )
        assert row.n_relevant == len(expected)
    assert set(per_query.domain) == {"sport", "science"}
    assert set(m["map_by_domain"]) == {"mono", "cross", "multi"}
    # trigram hashing favours same-script text: monolingual beats cross-lingual retrieval
    assert m["mono_map"] > m["cross_map"]
    assert m["own_language_preference"]["en"] > 1.0
    report = trec_rescore.independent_rescore(tmp_path)  # pytrec_eval over the gzip TREC files, tolerance 1e-4
    assert report["agrees"] and report["multi"]["n_queries"] == 3 * n_q


def test_mlqa_small_skips_queries_without_answer_in_pool(tmp_path, mlqa_small):
    m = lareqa.evaluate_lareqa(HashEncoder(), mlqa_small, tmp_path, cache_dir=tmp_path / "c", show_progress_bar=False)
    pairs = pd.read_parquet(tmp_path / "per_pair.parquet")
    n_by_lang = mlqa_small.questions.lang.value_counts()
    for row in pairs[pairs.setting != "multi"].itertuples():
        assert row.n_queries + row.n_skipped == n_by_lang[row.query_lang]
        has = sum(
            bool(mlqa_small.relevant_in(q, row.pool_lang))
            for q in mlqa_small.questions.qid[mlqa_small.questions.lang == row.query_lang]
        )
        assert row.n_queries == has
    assert m["n_skipped"]["cross"] > 0 and m["n_skipped"]["mono"] == 0
    assert trec_rescore.independent_rescore(tmp_path)["agrees"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["multilingual-e5-small", "use-multilingual"])
def test_frozen_baselines_out_of_the_box(tmp_path, xquad_small, tmp_cache, model, request):
    from hybridir_utils.models import load_encoder

    encoder = request.getfixturevalue("e5_model") if model == "multilingual-e5-small" else load_encoder(model)
    small = xquad_small.subset(languages=("en", "de"), articles=sorted(set(xquad_small.questions.article))[:1])
    m = lareqa.evaluate_lareqa(encoder, small, tmp_path, show_progress_bar=False)
    assert m["model"] == model
    # real multilingual encoders retrieve the answer far above chance (pools of ~25 sentences)
    assert m["mono_map"] > 0.5 and m["cross_map"] > 0.4 and m["multi_map"] > 0.3
    assert trec_rescore.independent_rescore(tmp_path)["agrees"]


def test_run_reader_streams_whole_queries(tmp_path):
    path = tmp_path / "run.trec"
    lines = [f"q{q} Q0 d{d} {d + 1} {1 - d / 10} t" for q in range(3) for d in range(3)]
    path.write_text("\n".join(lines) + "\n")
    blocks = list(trec.iter_trec_run(path, block_lines=2))
    assert [sorted(set(b.qid)) for b in blocks] == [["q0"], ["q1"], ["q2"]]  # never a query split in two
    assert len(trec.read_trec_run(path)) == 9
    path.write_text("\n".join([*lines, lines[0]]) + "\n")
    with pytest.raises(lareqa.EvaluationError, match="query 'q0' are not contiguous"):
        list(trec.iter_trec_run(path, block_lines=4))
    path.write_text("q0 Q0 d1 1\n")
    with pytest.raises(lareqa.EvaluationError, match="not a TREC run"):
        trec.read_trec_run(path)


def test_crash_before_metrics_keeps_the_previous_evaluation_whole(tmp_path, monkeypatch):
    """Issue 12 defect 7: a crash just before metrics.json left new tables and runs beside the old metrics.json,
    and killed rankings left orphan .tmp files in runs/."""
    ds, encoder = _toy()
    out = tmp_path / "out"
    lareqa.evaluate_lareqa(encoder, ds, out, cache_dir=tmp_path / "cache", show_progress_bar=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "runs" / ".multi.trec.gz.123.tmp").write_bytes(b"killed")  # an orphan of a killed ranking

    real_write_json = lareqa.io.write_json

    def crash(path, obj):
        if path.name == "metrics.json":
            raise KeyboardInterrupt("killed just before metrics.json")
        return real_write_json(path, obj)

    monkeypatch.setattr(lareqa.io, "write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        lareqa.evaluate_lareqa(
            encoder, ds, out, settings=("mono",), cache_dir=tmp_path / "cache", show_progress_bar=False
        )
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".tmp"}
    assert after == before  # the previous evaluation, untouched: no new parquet beside the old metrics.json
    monkeypatch.setattr(lareqa.io, "write_json", real_write_json)
    lareqa.evaluate_lareqa(encoder, ds, out, settings=("mono",), cache_dir=tmp_path / "cache", show_progress_bar=False)
    assert read_json(out / "metrics.json")["settings"] == ["mono"]
    assert not list(out.rglob("*.tmp")) and not list(tmp_path.glob(".out.tmp-*"))  # orphans and staging cleaned


# ----------------------------------------------------------------------------------------------- issue 15 guard


def test_real_e5_per_query_ap_equals_the_pre_refactor_values(shared_data_dir, e5_model, tmp_path):
    """The retrieval toolkit's split (issue 15: evaluation.py -> embeddings / search / trec / lareqa) moved code and
    changed no number. ``fixtures/lareqa_e5_ap_before.json`` was computed BEFORE that refactor, by the old
    ``hybridir_utils.evaluation.evaluate_lareqa`` at commit cdfd4ec (real multilingual-e5-small, XQuAD-R en + zh,
    its first 2 articles, fresh encoding); this re-scores the same evaluation with today's code."""
    import json
    from pathlib import Path

    from hybridir_utils.data import load_lareqa

    before = json.loads((Path(__file__).parent / "fixtures" / "lareqa_e5_ap_before.json").read_text())
    ds = load_lareqa("xquad-r", languages=tuple(before["languages"]), data_dir=shared_data_dir)
    ds = ds.subset(articles=sorted(set(ds.questions.article))[: before["n_articles"]])
    m = lareqa.evaluate_lareqa(
        e5_model, ds, tmp_path / "out", cache_dir=tmp_path / "cache", use_cache=False, show_progress_bar=False
    )
    now = pd.read_parquet(tmp_path / "out" / "per_query.parquet").set_index(["setting", "pool_lang", "qid"])
    old = pd.DataFrame(before["rows"]).set_index(["setting", "pool_lang", "qid"])
    assert len(old) == 336 and sorted(now.index) == sorted(old.index)
    now = now.loc[old.index]
    for col in ("ap", "r1", "r10"):
        np.testing.assert_allclose(now[col].to_numpy(), old[col].to_numpy(), rtol=0, atol=1e-9, err_msg=col)
    assert (now.first_rank.to_numpy() == old.first_rank.to_numpy()).all()
    for key, value in before["macro"].items():
        assert m[key] == pytest.approx(value, abs=1e-9), key
