"""MIRACL loading (local official files and 🤗-format datasets), BM25, dense search, metrics, error messages."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hybridir_utils import miracl
from hybridir_utils.trec import read_trec_qrels, read_trec_run

FIXTURES = Path(__file__).parent / "fixtures" / "miracl"
LOCAL = FIXTURES / "local"


class HashEncoder:
    """Deterministic character-bigram hashing encoder (test double: cheap, lexical)."""

    def fingerprint(self) -> str:
        return "hash-bigram-64"

    def encode(self, texts, prompt_name=None, **kwargs):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for j in range(len(text) - 1):
                out[i, hashlib.md5(text[j : j + 2].lower().encode()).digest()[0] % 64] += 1.0
        return out


@pytest.fixture
def hub_loader(tmp_path):
    """Reads the saved hub-format parquet files through datasets.load_dataset, like the hub would be read."""
    import datasets

    def load(name: str, config: str, split: str):
        path = FIXTURES / "hf" / name.split("/")[-1] / config / f"{split}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"no such dataset {name}/{config}/{split}")
        return datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))

    return load


def _copy_local(tmp_path: Path) -> Path:
    root = tmp_path / "miracl"
    shutil.copytree(LOCAL, root)
    return root


@pytest.mark.parametrize("lang", ["es", "zh"])
def test_local_and_hub_formats_load_the_same_data(lang, hub_loader):
    local = miracl.load_miracl_local(lang, LOCAL)
    hub = miracl.load_miracl_hub(lang, hub_loader=hub_loader)
    assert len(local.topics) == 10 and len(local.corpus) == 60
    pd.testing.assert_frame_equal(local.topics, hub.topics)
    assert local.qrels == hub.qrels
    assert sum(r for q in local.qrels.values() for r in q.values()) == 20  # 2 relevant + 1 judged non-relevant
    key = ["docid"]
    pd.testing.assert_frame_equal(
        local.corpus.sort_values(key).reset_index(drop=True), hub.corpus.sort_values(key).reset_index(drop=True)
    )
    assert local.passages()[0].startswith(local.corpus.title[0] + " ")  # MIRACL: title + " " + text


def test_tokenize_splits_cjk_into_bigrams():
    assert miracl.tokenize("Río Amazonas, 7000 km", "es") == ["río", "amazonas", "7000", "km"]
    assert miracl.tokenize("亚马孙河很长", "zh") == ["亚马", "马孙", "孙河", "河很", "很长"]
    assert miracl.tokenize("亚马孙 river", "es") == ["亚马孙", "river"]  # bigrams only for zh/ja/th


def test_evaluate_local_and_hub_agree_and_bm25_is_strong(tmp_path, hub_loader):
    enc = HashEncoder()
    kw = {"cache_dir": tmp_path / "cache", "show_progress_bar": False}
    local = miracl.evaluate_miracl(enc, ["es", "zh"], tmp_path / "local", source=LOCAL, **kw)
    hub = miracl.evaluate_miracl(enc, ["es", "zh"], tmp_path / "hub", source="hub", hub_loader=hub_loader, **kw)
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
        HashEncoder(), "es", None, source=LOCAL, index="hnsw", bm25=False, cache_dir=tmp_path, show_progress_bar=False
    )
    ann = m["language_info"]["es"]["ann"]
    assert ann["index"] == "hnsw" and ann["recall@100_vs_exact"] == pytest.approx(1.0) and ann["queries"] == 10


def test_corpus_sample_is_seeded_and_labelled(tmp_path):
    a = miracl.load_miracl_local("es", LOCAL, sample_size=5, seed=0)
    b = miracl.load_miracl_local("es", LOCAL, sample_size=5, seed=0)
    c = miracl.load_miracl_local("zh", LOCAL, sample_size=5, seed=1)
    assert a.corpus.docid.tolist() == b.corpus.docid.tolist()
    assert len(a.corpus) == 35 and len(c.corpus) == 35  # 30 judged + 5 random
    judged = {d for rel in a.qrels.values() for d in rel}
    assert judged <= set(a.corpus.docid)
    info = a.corpus_info
    assert info["kind"] == "sample" and info["comparable_to_full_corpus"] is False and info["full_size"] == 60
    seeds = {tuple(miracl.load_miracl_local("es", LOCAL, sample_size=5, seed=s).corpus.docid) for s in range(4)}
    assert len(seeds) > 1
    m = miracl.evaluate_miracl(
        HashEncoder(),
        ["es"],
        None,
        source=LOCAL,
        sample_size=5,
        bm25=False,
        cache_dir=tmp_path,
        show_progress_bar=False,
    )
    assert m["comparable_to_full_corpus"] is False


def test_malformed_qrels_names_file_and_line(tmp_path):
    root = _copy_local(tmp_path)
    qrels = root / "miracl-v1.0-es" / "qrels" / "qrels.miracl-v1.0-es-dev.tsv"
    lines = qrels.read_text(encoding="utf-8").splitlines()
    lines[4] = "10\tQ0\t1001#1"  # 3 fields
    qrels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(miracl.MiraclError, match=r"qrels\.miracl-v1\.0-es-dev\.tsv:5: expected 'qid Q0 docid"):
        miracl.load_miracl_local("es", root)
    lines[4] = "10\tQ0\t1001#1\tyes"
    qrels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(miracl.MiraclError, match=r":5: relevance 'yes' is not an integer"):
        miracl.load_miracl_local("es", root)


def test_qrels_with_unknown_docid_or_query(tmp_path):
    root = _copy_local(tmp_path)
    qrels = root / "miracl-v1.0-zh" / "qrels" / "qrels.miracl-v1.0-zh-dev.tsv"
    original = qrels.read_text(encoding="utf-8")
    qrels.write_text(original + "3\tQ0\t9999#9\t1\n", encoding="utf-8")
    with pytest.raises(miracl.MiraclError, match=r"dev\.tsv:31: docid '9999#9' \(query 3\) is not in the corpus"):
        miracl.load_miracl_local("zh", root)
    qrels.write_text(original + "42\tQ0\t5000#0\t1\n", encoding="utf-8")
    with pytest.raises(miracl.MiraclError, match=r":31: query id '42' is not in the topics file"):
        miracl.load_miracl_local("zh", root)


def test_bad_corpus_and_topics(tmp_path):
    root = _copy_local(tmp_path)
    shard = root / "miracl-corpus-v1.0-es" / "docs-1.jsonl.gz"
    with gzip.open(shard, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    lines[2] = '{"docid": "1105#0", "title": "x"'  # truncated JSON
    with gzip.open(shard, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    with pytest.raises(miracl.MiraclError, match=r"docs-1\.jsonl\.gz:3: expected a JSON object"):
        miracl.load_miracl_local("es", root)
    topics = root / "miracl-v1.0-zh" / "topics" / "topics.miracl-v1.0-zh-dev.tsv"
    topics.write_text(topics.read_text(encoding="utf-8") + "3\tduplicate\n", encoding="utf-8")
    with pytest.raises(miracl.MiraclError, match=r"dev\.tsv:11: duplicate query id '3'"):
        miracl.load_miracl_local("zh", root)
    with pytest.raises(FileNotFoundError, match=r"miracl-v1\.0-fr"):
        miracl.load_miracl_local("fr", root)


def test_hub_judged_docid_missing_from_corpus(hub_loader):
    def loader(name, config, split):
        ds = hub_loader(name, config, split)
        return ds.filter(lambda row: row["docid"] != "1000#1") if "corpus" in name else ds

    with pytest.raises(miracl.MiraclError, match=r"row 0 \(query 3\): judged docid '1000#1' is not in"):
        miracl.load_miracl_hub("es", hub_loader=loader)
    with pytest.raises(miracl.MiraclError, match="cannot load MIRACL fr"):
        miracl.load_miracl_hub("fr", hub_loader=hub_loader)


@pytest.mark.parametrize(("kwargs", "needle"), [({"sample_size": -1}, "sample_size"), ({"seed": "x"}, "seed")])
def test_bad_sampling_arguments_are_named(kwargs, needle):
    """Issue 12 defect 8: sample_size=-1 was silently 0, seed='x' a raw ValueError."""
    with pytest.raises(miracl.MiraclError, match=rf"{needle} must be an integer >= 0"):
        miracl.load_miracl_local("es", LOCAL, **kwargs)
