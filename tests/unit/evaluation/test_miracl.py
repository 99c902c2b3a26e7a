"""MIRACL loading (local official files and the hub's files), BM25, dense search, metrics, error messages."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from doubles import MIRACL_LOCAL, BigramEncoder, copy_local_miracl

from hybridir_utils import errors
from hybridir_utils.data import miracl_loader
from hybridir_utils.evaluation import miracl
from hybridir_utils.retrieval.trec import read_trec_qrels, read_trec_run
from hybridir_utils.utils.atomic import read_json


def test_tokenize_splits_cjk_into_bigrams():
    assert miracl.tokenize("Río Amazonas, 7000 km", "es") == ["río", "amazonas", "7000", "km"]
    assert miracl.tokenize("亚马孙河很长", "zh") == ["亚马", "马孙", "孙河", "河很", "很长"]
    assert miracl.tokenize("亚马孙 river", "es") == ["亚马孙", "river"]  # bigrams only for zh/ja/th


def test_evaluate_local_and_hub_agree_and_bm25_is_strong(tmp_path, fake_hub):
    enc = BigramEncoder()
    kw = {"cache_dir": tmp_path / "cache", "show_progress_bar": False}
    local = miracl.evaluate_miracl(enc, ["es", "zh"], tmp_path / "local", source=MIRACL_LOCAL, **kw)
    hub = miracl.evaluate_miracl(enc, ["es", "zh"], tmp_path / "hub", source="hub", **kw)
    for key in ("dense_ndcg@10", "dense_recall@100", "bm25_ndcg@10", "bm25_recall@100"):
        assert local[key] == pytest.approx(hub[key])
    # hand-written queries share words with their answers: lexical BM25 should rank them high
    rows = pd.DataFrame(local["per_language"]).set_index(["lang", "retriever"])
    assert local["bm25_ndcg@10"] > 0.8 and rows.loc[("es", "bm25"), "recall@100"] == 1.0
    assert local["dense_ndcg@10"] == pytest.approx(rows.xs("dense", level="retriever")["ndcg@10"].mean())
    assert local["comparable_to_full_corpus"] is True
    assert local["language_info"]["zh"]["corpus"] == {"kind": "full", "size": 60, "comparable_to_full_corpus": True}
    assert rows.loc[("zh", "dense"), "corpus_size"] == 60 and rows.loc[("zh", "dense"), "n_judged_queries"] == 10
    # the written files re-score to the same numbers with pytrec_eval
    import pytrec_eval

    out = tmp_path / "local"
    qrels = read_trec_qrels(out / "runs" / "es.qrels")
    run = read_trec_run(out / "runs" / "es.dense.trec")
    run_dict = {q: dict(zip(g.docid, g.score, strict=True)) for q, g in run.groupby("qid")}
    scores = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run_dict)
    mean = sum(v["ndcg_cut_10"] for v in scores.values()) / len(scores)
    assert mean == pytest.approx(rows.loc[("es", "dense"), "ndcg@10"], abs=1e-6)
    table = pd.read_parquet(out / "per_query.parquet")
    assert len(table) == 2 * 2 * 10 and set(table.retriever) == {"dense", "bm25"}


def test_hnsw_reports_recall_against_exact(tmp_path):
    m = miracl.evaluate_miracl(
        BigramEncoder(),
        "es",
        None,
        source=MIRACL_LOCAL,
        index="hnsw",
        bm25=False,
        cache_dir=tmp_path,
        show_progress_bar=False,
    )
    ann = m["language_info"]["es"]["ann"]
    assert ann["index"] == "hnsw" and ann["recall@100_vs_exact"] == pytest.approx(1.0) and ann["queries"] == 10


# ------------------------------------------------------------------ issue 12: MIRACL leftovers (one test per defect)


def test_one_language_failing_does_not_stop_the_others(tmp_path):
    """A bad file in one language used to abort every language; now it is a row with its error, and a warning."""
    root = copy_local_miracl(tmp_path)
    topics = root / "miracl-v1.0-es" / "topics" / "topics.miracl-v1.0-es-dev.tsv"
    topics.write_text("3 no tab here\n", encoding="utf-8")
    kw = {"cache_dir": tmp_path / "cache", "show_progress_bar": False}
    with pytest.warns(miracl_loader.MiraclWarning, match=r"MIRACL es: skipped .*topics\.miracl-v1\.0-es-dev\.tsv:1"):
        m = miracl.evaluate_miracl(BigramEncoder(), ["es", "zh"], tmp_path / "out", source=root, **kw)
    rows = pd.DataFrame(m["per_language"]).set_index(["lang", "retriever"])
    assert set(rows.status) == {"ok", "error"} and rows.loc[("zh", "dense"), "status"] == "ok"
    assert "topics.miracl-v1.0-es-dev.tsv:1" in rows.loc[("es", "dense"), "error"]
    assert np.isnan(rows.loc[("es", "dense"), "ndcg@10"])
    assert m["dense_ndcg@10"] == pytest.approx(rows.loc[("zh", "dense"), "ndcg@10"])  # macro over the languages scored
    assert set(m["failed"]) == {"es"} and set(m["per_query"].lang) == {"zh"}
    topics.write_text("", encoding="utf-8")
    (root / "miracl-v1.0-zh" / "topics" / "topics.miracl-v1.0-zh-dev.tsv").unlink()
    with (
        pytest.warns(miracl_loader.MiraclWarning),
        pytest.raises(errors.MiraclError, match=r"every language failed.*es:.*zh:"),
    ):
        miracl.evaluate_miracl(BigramEncoder(), ["es", "zh"], None, source=root, **kw)


# ------------------------------------------------------------------ issue 14 item 5: every system on MIRACL


class SaltedEncoder(BigramEncoder):
    """A BigramEncoder per model folder, so that systems and seeds get different (but deterministic) scores."""

    def __init__(self, name: str):
        self.name = str(name)

    def fingerprint(self) -> str:
        return f"hash-bigram-64-{self.name}"

    def encode(self, texts, prompt_name=None, **kwargs):
        return super().encode([f"{self.name[-1]}{t}" for t in texts], prompt_name, **kwargs)


def test_every_system_and_seed_is_scored_on_miracl_with_bm25_once(tmp_path, monkeypatch):
    """Only the baselines and hybrid/general (first seed) were scored: MIRACL could not speak to the domain question.

    The fixture folder is given relative to the project root, as a profile writes it (papermill runs in notebooks/).
    """
    from hybridir_utils.evaluation import systems
    from hybridir_utils.report import summaries
    from hybridir_utils.utils import paths

    monkeypatch.setattr(systems, "load_encoder", lambda name, backend="torch", max_seq_length=None: SaltedEncoder(name))
    monkeypatch.setattr(systems, "inference_backend", lambda name, backend: backend)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYBRIDIR_CACHE_DIR", str(tmp_path / "cache"))
    trained = [(system, seed) for system in ("hybrid/general", "hybrid/science-in-domain",
               "hybrid/science-size-random") for seed in (0, 1)]  # fmt: skip
    lineup = pd.DataFrame(
        [{"label": b, "system": b, "seed": 0, "source": b} for b in ("multilingual-e5-small", "use-multilingual")]
        + [{"label": f"{s}/seed{k}", "system": s, "seed": k, "source": f"runs/{s}-{k}"} for s, k in trained]
    )
    relative = MIRACL_LOCAL.relative_to(paths.root())
    entered = []
    monkeypatch.setattr(systems.environment, "resolve_precision", lambda precision: precision)
    autocast = lambda precision: entered.append(precision) or nullcontext()  # noqa: E731
    monkeypatch.setattr(systems.environment, "autocast", autocast)
    table = systems.evaluate_miracl_systems(lineup, relative, ["es", "zh"], tmp_path / "miracl", precision="bf16")
    assert entered == ["bf16"] * len(lineup)  # every system encodes in the asked precision, as on LAReQA
    assert read_json(tmp_path / "miracl" / "environment.json")["precision"] == "bf16"
    dense = table[table.retriever == "dense"]
    assert set(zip(dense.system, dense.seed, strict=True)) == set(zip(lineup.system, lineup.seed, strict=True))
    assert len(dense) == len(lineup) * 2 and (table.status == "ok").all()
    assert len(table[table.retriever == "bm25"]) == 2 and set(table[table.retriever == "bm25"].system) == {"bm25"}
    summary = summaries.miracl_summary(table)
    assert list(summary.index) == [*dict.fromkeys(lineup.system), "bm25"]
    assert summary.loc["hybrid/science-in-domain", "seeds"] == 2 and summary.loc["use-multilingual", "seeds"] == 1
    seeds = dense[(dense.system == "hybrid/general")].groupby("lang")["ndcg@10"].mean()
    assert summary.loc["hybrid/general", "es"] == pytest.approx(seeds["es"])
    assert summary.loc["hybrid/general", "macro"] == pytest.approx(seeds.mean())


def test_notebook_04_prints_the_miracl_caveat_beside_the_table():
    """The caveat (e5 saw MIRACL's training split; what the table does and does not show) sits in the MIRACL section."""
    from hybridir_utils.report import summaries

    text = (Path(__file__).parents[3] / "notebooks" / "04_evaluation.py").read_text(encoding="utf-8")
    section = text[text.index("# ## MIRACL") :]
    markdown = " ".join(line[2:].strip() for line in section.splitlines() if line.startswith("# "))
    assert summaries.MIRACL_CAVEAT in " ".join(markdown.replace("**", "").split())
    assert "report.miracl_summary(" in section
