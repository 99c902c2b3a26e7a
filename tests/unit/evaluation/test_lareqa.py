"""LAReQA evaluation (:mod:`evaluation.lareqa`): hand-computed metrics (ties, several relevant), outputs and
their atomic writes, real data, and TREC files re-scored independently (:mod:`hybridir_utils.retrieval.rescore`, whose
own tests are in test_trec_rescore.py). The toolkit under it has its own test files: test_embeddings, test_search,
test_trec."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from doubles import HashEncoder

from hybridir_utils.data.lareqa_loader import LAReQAData
from hybridir_utils.evaluation import lareqa
from hybridir_utils.retrieval import rescore, trec
from hybridir_utils.utils.atomic import read_json

# ----------------------------------------------------------------------------------------------- test doubles


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
    report = rescore.independent_rescore(tmp_path / "out")
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
    report = rescore.independent_rescore(tmp_path)  # pytrec_eval over the gzip TREC files, tolerance 1e-4
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
    assert rescore.independent_rescore(tmp_path)["agrees"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["multilingual-e5-small", "use-multilingual"])
def test_frozen_baselines_out_of_the_box(tmp_path, xquad_small, tmp_cache, model, request):
    from hybridir_utils.models.loading import load_encoder

    encoder = request.getfixturevalue("e5_model") if model == "multilingual-e5-small" else load_encoder(model)
    small = xquad_small.subset(languages=("en", "de"), articles=sorted(set(xquad_small.questions.article))[:1])
    m = lareqa.evaluate_lareqa(encoder, small, tmp_path, show_progress_bar=False)
    assert m["model"] == model
    # real multilingual encoders retrieve the answer far above chance (pools of ~25 sentences)
    assert m["mono_map"] > 0.5 and m["cross_map"] > 0.4 and m["multi_map"] > 0.3
    assert rescore.independent_rescore(tmp_path)["agrees"]


def test_crash_before_metrics_keeps_the_previous_evaluation_whole(tmp_path, monkeypatch):
    """Issue 12 defect 7: a crash just before metrics.json left new tables and runs beside the old metrics.json,
    and killed rankings left orphan .tmp files in runs/."""
    ds, encoder = _toy()
    out = tmp_path / "out"
    lareqa.evaluate_lareqa(encoder, ds, out, cache_dir=tmp_path / "cache", show_progress_bar=False)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (out / "runs" / ".multi.trec.gz.123.tmp").write_bytes(b"killed")  # an orphan of a killed ranking

    real_write_json = lareqa.atomic.write_json

    def crash(path, obj):
        if path.name == "metrics.json":
            raise KeyboardInterrupt("killed just before metrics.json")
        return real_write_json(path, obj)

    monkeypatch.setattr(lareqa.atomic, "write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        lareqa.evaluate_lareqa(
            encoder, ds, out, settings=("mono",), cache_dir=tmp_path / "cache", show_progress_bar=False
        )
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix != ".tmp"}
    assert after == before  # the previous evaluation, untouched: no new parquet beside the old metrics.json
    monkeypatch.setattr(lareqa.atomic, "write_json", real_write_json)
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

    from hybridir_utils.data.lareqa_loader import load_lareqa

    before = json.loads((Path(__file__).parents[2] / "fixtures" / "lareqa_e5_ap_before.json").read_text())
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


def test_ranking_on_a_torch_device_gives_the_numpy_tables(tmp_path):
    """``rank_device`` (a GPU in notebook 04) scores and ranks with torch: on the toy (exact angles, an exact tie
    between the en and de 'SAME') every per-query row equals numpy's; run files are refused nothing (host copy)."""
    ds, encoder = _toy()
    host = lareqa.evaluate_lareqa(encoder, ds, tmp_path / "host", cache_dir=tmp_path / "c", show_progress_bar=False)
    torch_run = lareqa.evaluate_lareqa(encoder, ds, tmp_path / "dev", cache_dir=tmp_path / "c", show_progress_bar=False,
                                       rank_device="cpu", write_runs=False)  # fmt: skip
    assert host["ranked_on"] == "host (numpy)" and torch_run["ranked_on"] == "cpu"
    a, b = (pd.read_parquet(tmp_path / f / "per_query.parquet") for f in ("host", "dev"))
    pd.testing.assert_frame_equal(a, b)
    for key in ("mono_map", "cross_map", "multi_map", "rank_distance", "language_preference"):
        assert torch_run.get(key) == host.get(key), key
    with_runs = lareqa.evaluate_lareqa(encoder, ds, tmp_path / "runs", cache_dir=tmp_path / "c",
                                       show_progress_bar=False, rank_device="cpu")  # fmt: skip
    assert with_runs["multi_map"] == host["multi_map"]
    for setting in ("multi", "mono", "cross"):
        pd.testing.assert_frame_equal(*(trec.read_trec_run(tmp_path / f / "runs" / f"{setting}.trec.gz")
                                        for f in ("runs", "host")))  # fmt: skip
