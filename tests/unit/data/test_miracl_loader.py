"""MIRACL files (data.miracl_loader): local and hub files read the same; malformed input named by file and line."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import doubles
import pandas as pd
import pytest
from doubles import MIRACL_HUB, MIRACL_LOCAL, BigramEncoder, copy_local_miracl

from hybridir_utils import errors
from hybridir_utils.data import miracl_loader
from hybridir_utils.evaluation import miracl


@pytest.mark.parametrize("lang", ["es", "zh"])
def test_local_and_hub_files_load_the_same_data(lang, fake_hub):
    local = miracl_loader.load_miracl_local(lang, MIRACL_LOCAL)
    hub = miracl_loader.load_miracl_hub(lang)
    assert fake_hub == [  # only the files of this language, topics first (a missing language fails before the corpus)
        ("miracl/miracl", "dataset", [f"miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-dev.tsv",
                                      f"miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-dev.tsv"]),
        ("miracl/miracl-corpus", "dataset", [f"miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz"]),
    ]  # fmt: skip
    assert hub.source.startswith("hub:miracl/miracl/") and local.source.startswith("local:")
    assert len(local.topics) == 10 and len(local.corpus) == 60
    pd.testing.assert_frame_equal(local.topics, hub.topics)
    assert local.qrels == hub.qrels
    assert sum(r for q in local.qrels.values() for r in q.values()) == 20  # 2 relevant + 1 judged non-relevant
    key = ["docid"]
    pd.testing.assert_frame_equal(
        local.corpus.sort_values(key).reset_index(drop=True), hub.corpus.sort_values(key).reset_index(drop=True)
    )
    assert local.passages()[0].startswith(local.corpus.title[0] + " ")  # MIRACL: title + " " + text


def test_corpus_sample_is_seeded_and_labelled(tmp_path):
    a = miracl_loader.load_miracl_local("es", MIRACL_LOCAL, sample_size=5, seed=0)
    b = miracl_loader.load_miracl_local("es", MIRACL_LOCAL, sample_size=5, seed=0)
    c = miracl_loader.load_miracl_local("zh", MIRACL_LOCAL, sample_size=5, seed=1)
    assert a.corpus.docid.tolist() == b.corpus.docid.tolist()
    assert len(a.corpus) == 35 and len(c.corpus) == 35  # 30 judged + 5 random
    judged = {d for rel in a.qrels.values() for d in rel}
    assert judged <= set(a.corpus.docid)
    info = a.corpus_info
    assert info["kind"] == "sample" and info["comparable_to_full_corpus"] is False and info["full_size"] == 60
    seeds = {
        tuple(miracl_loader.load_miracl_local("es", MIRACL_LOCAL, sample_size=5, seed=s).corpus.docid) for s in range(4)
    }
    assert len(seeds) > 1
    m = miracl.evaluate_miracl(
        BigramEncoder(),
        ["es"],
        None,
        source=MIRACL_LOCAL,
        sample_size=5,
        bm25=False,
        cache_dir=tmp_path,
        show_progress_bar=False,
    )
    assert m["comparable_to_full_corpus"] is False


def test_malformed_qrels_names_file_and_line(tmp_path):
    root = copy_local_miracl(tmp_path)
    qrels = root / "miracl-v1.0-es" / "qrels" / "qrels.miracl-v1.0-es-dev.tsv"
    lines = qrels.read_text(encoding="utf-8").splitlines()
    lines[4] = "10\tQ0\t1001#1"  # 3 fields
    qrels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(errors.MiraclError, match=r"qrels\.miracl-v1\.0-es-dev\.tsv:5: expected 'qid Q0 docid"):
        miracl_loader.load_miracl_local("es", root)
    lines[4] = "10\tQ0\t1001#1\tyes"
    qrels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(errors.MiraclError, match=r":5: relevance 'yes' is not an integer"):
        miracl_loader.load_miracl_local("es", root)


def test_qrels_with_unknown_docid_or_query(tmp_path):
    root = copy_local_miracl(tmp_path)
    qrels = root / "miracl-v1.0-zh" / "qrels" / "qrels.miracl-v1.0-zh-dev.tsv"
    original = qrels.read_text(encoding="utf-8")
    qrels.write_text(original + "3\tQ0\t9999#9\t1\n", encoding="utf-8")
    with pytest.raises(errors.MiraclError, match=r"dev\.tsv:31: docid '9999#9' \(query 3\) is not in the corpus"):
        miracl_loader.load_miracl_local("zh", root)
    qrels.write_text(original + "42\tQ0\t5000#0\t1\n", encoding="utf-8")
    with pytest.raises(errors.MiraclError, match=r":31: query id '42' is not in the topics file"):
        miracl_loader.load_miracl_local("zh", root)


def test_bad_corpus_and_topics(tmp_path):
    root = copy_local_miracl(tmp_path)
    shard = root / "miracl-corpus-v1.0-es" / "docs-1.jsonl.gz"
    with gzip.open(shard, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    lines[2] = '{"docid": "1105#0", "title": "x"'  # truncated JSON
    with gzip.open(shard, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    with pytest.raises(errors.MiraclError, match=r"docs-1\.jsonl\.gz:3: expected a JSON object"):
        miracl_loader.load_miracl_local("es", root)
    topics = root / "miracl-v1.0-zh" / "topics" / "topics.miracl-v1.0-zh-dev.tsv"
    topics.write_text(topics.read_text(encoding="utf-8") + "3\tduplicate\n", encoding="utf-8")
    with pytest.raises(errors.MiraclError, match=r"dev\.tsv:11: duplicate query id '3'"):
        miracl_loader.load_miracl_local("zh", root)
    with pytest.raises(FileNotFoundError, match=r"miracl-v1\.0-fr"):
        miracl_loader.load_miracl_local("fr", root)


def test_hub_file_missing_names_the_repo_and_file(fake_hub, tmp_path):
    with pytest.raises(errors.MiraclError, match=r"hub dataset miracl/miracl has no file miracl-v1\.0-fr/topics/"):
        miracl_loader.load_miracl_hub("fr")
    assert [repo for repo, _, _ in fake_hub] == ["miracl/miracl"]  # the corpus is not downloaded for nothing
    shutil.copytree(MIRACL_HUB, tmp_path / "hub")
    for shard in (tmp_path / "hub" / "miracl" / "miracl-corpus" / "miracl-corpus-v1.0-es").iterdir():
        shard.unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(doubles, "MIRACL_HUB", tmp_path / "hub")  # where the fake hub (conftest) reads its files
        match = r"miracl/miracl-corpus has no files miracl-corpus-v1\.0-es/docs-"
        with pytest.raises(errors.MiraclError, match=match):
            miracl_loader.load_miracl_hub("es")


def test_hub_unreachable_names_the_repo_and_files(tmp_path, monkeypatch):
    """No network here: the real snapshot_download in offline mode, with an empty cache, fails; the error says so."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    pattern = r"cannot download miracl-v1\.0-es/topics/topics\.miracl-v1\.0-es-dev\.tsv, .* hub dataset miracl/miracl"
    with pytest.raises(errors.MiraclError, match=pattern) as info:
        miracl_loader.load_miracl_hub("es")
    assert "HF_HUB_OFFLINE=1 with nothing cached" in str(info.value)


@pytest.mark.parametrize(("kwargs", "needle"), [({"sample_size": -1}, "sample_size"), ({"seed": "x"}, "seed")])
def test_bad_sampling_arguments_are_named(kwargs, needle):
    """Issue 12 defect 8: sample_size=-1 was silently 0, seed='x' a raw ValueError."""
    with pytest.raises(errors.MiraclError, match=rf"{needle} must be an integer >= 0"):
        miracl_loader.load_miracl_local("es", MIRACL_LOCAL, **kwargs)


def test_bom_on_topics_is_read_not_blamed_on_qrels(tmp_path):
    """A UTF-8 BOM glued to the first query id made it unknown, and the error blamed the qrels file."""
    root = copy_local_miracl(tmp_path)
    topics = root / "miracl-v1.0-zh" / "topics" / "topics.miracl-v1.0-zh-dev.tsv"
    topics.write_bytes(b"\xef\xbb\xbf" + topics.read_bytes())
    data = miracl_loader.load_miracl_local("zh", root)
    assert data.topics.qid[0] == "3" and data.qrels == miracl_loader.load_miracl_local("zh", MIRACL_LOCAL).qrels


def _append_to_shard(shard: Path, line: str) -> int:
    """Append ``line`` to a gzip'd JSONL shard; returns its line number."""
    with gzip.open(shard, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    with gzip.open(shard, "wt", encoding="utf-8") as fh:
        fh.write("\n".join([*lines, line]) + "\n")
    return len(lines) + 1


def test_conflicting_corpus_duplicate_names_file_and_line(tmp_path):
    """A duplicate docid used to raise 'corpus: duplicate docid' with no file or line."""
    root = copy_local_miracl(tmp_path)
    shard = root / "miracl-corpus-v1.0-es" / "docs-1.jsonl.gz"
    lineno = _append_to_shard(shard, '{"docid": "1000#0", "title": "Canberra", "text": "otro texto"}')
    pattern = rf"docs-1\.jsonl\.gz:{lineno}: docid '1000#0' .*different title/text.*docs-0\.jsonl\.gz:1\b"
    with pytest.raises(errors.MiraclError, match=pattern):
        miracl_loader.load_miracl_local("es", root)


def test_repeated_passages_are_dropped_with_a_counting_warning(tmp_path):
    """Real MIRACL repeats some lines; an exact repeat of a passage used to abort the language."""
    root = copy_local_miracl(tmp_path)
    original = miracl_loader.load_miracl_local("es", MIRACL_LOCAL)
    shard = root / "miracl-corpus-v1.0-es" / "docs-1.jsonl.gz"
    first = original.corpus.iloc[0]
    for _ in range(2):
        _append_to_shard(shard, json.dumps(dict(first[["docid", "title", "text"]]), ensure_ascii=False))
    with pytest.warns(miracl_loader.MiraclWarning, match=r"docs-1\.jsonl\.gz.*2 repeated passage"):
        data = miracl_loader.load_miracl_local("es", root)
    pd.testing.assert_frame_equal(data.corpus, original.corpus)


def test_repeated_judgements_are_dropped_conflicting_ones_name_both_lines(tmp_path):
    """Korean MIRACL dev qrels repeat judgements (reported upstream in pyserini): that aborted the language."""
    root = copy_local_miracl(tmp_path)
    qrels = root / "miracl-v1.0-es" / "qrels" / "qrels.miracl-v1.0-es-dev.tsv"
    original = qrels.read_text(encoding="utf-8")
    first = original.splitlines()[0]  # "3<TAB>Q0<TAB>1000#0<TAB>1"
    qrels.write_text(original + first + "\n" + first + "\n" + first + "\n", encoding="utf-8")
    with pytest.warns(miracl_loader.MiraclWarning, match=r"qrels\.miracl-v1\.0-es-dev\.tsv: 3 repeated judgement"):
        data = miracl_loader.load_miracl_local("es", root)
    assert data.qrels == miracl_loader.load_miracl_local("es", MIRACL_LOCAL).qrels
    qrels.write_text(original + first[:-1] + "0\n", encoding="utf-8")
    with pytest.raises(errors.MiraclError, match=r"dev\.tsv:31: \('3', '1000#0'\) judged 0 here but 1 at line 1"):
        miracl_loader.load_miracl_local("es", root)
