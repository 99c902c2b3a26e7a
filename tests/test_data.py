"""Loader tests on the real shared LAReQA files, plus bad-input cases on broken copies."""

from __future__ import annotations

import io as stdio
import json
from collections import Counter

import pytest

from hybridir_utils import data
from hybridir_utils.data import DataError, load_lareqa, training_pairs

# The table in ../shared/data/lareqa/README.md (from the LAReQA README).
XQUAD_CANDIDATES = {"ar": 1222, "de": 1276, "el": 1234, "en": 1180, "es": 1215, "hi": 1244, "ru": 1219,
                    "th": 852, "tr": 1167, "vi": 1209, "zh": 1196}  # fmt: skip
MLQA_QUESTIONS = {"ar": 517, "de": 512, "en": 1148, "es": 500, "hi": 507, "vi": 511, "zh": 504}
MLQA_CANDIDATES = {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322}


@pytest.fixture(scope="module")
def xquad(shared_data_dir):
    return load_lareqa("xquad-r", data_dir=shared_data_dir)


@pytest.fixture(scope="module")
def mlqa(shared_data_dir):
    return load_lareqa("mlqa-r", data_dir=shared_data_dir)


def test_xquad_counts_match_readme(xquad):
    assert xquad.questions.groupby("lang").size().to_dict() == dict.fromkeys(XQUAD_CANDIDATES, 1190)
    assert xquad.candidates.groupby("lang").size().to_dict() == XQUAD_CANDIDATES
    assert sum(XQUAD_CANDIDATES.values()) == len(xquad.candidates) == 13014  # LAReQA's multilingual pool
    assert xquad.questions.article.nunique() == 48


def test_xquad_relevant_sets_are_11_way(xquad):
    assert Counter(len(r) for r in xquad.relevant.values()) == {11: 1190 * 11}
    qid = xquad.questions.qid.iloc[0]
    assert len(xquad.relevant_in(qid, "th")) == 1


def test_mlqa_counts_and_group_sizes(mlqa):
    assert mlqa.questions.groupby("lang").size().to_dict() == MLQA_QUESTIONS
    assert mlqa.candidates.groupby("lang").size().to_dict() == MLQA_CANDIDATES
    assert len(mlqa.candidates) == 20534
    assert mlqa.groups().value_counts().to_dict() == {2: 65, 3: 263, 4: 820}
    # every relevant set is as large as its group: 2-4 sentences in the multilingual pool
    sizes = mlqa.questions.group.map(mlqa.groups())
    assert [len(mlqa.relevant[q]) for q in mlqa.questions.qid] == sizes.tolist()


def test_answer_sentence_contains_answer(xquad, shared_data_dir):
    en = xquad.questions[xquad.questions.lang == "en"].head(200)
    text = dict(zip(xquad.candidates.cid, xquad.candidates.text, strict=True))
    raw = json.loads((shared_data_dir / "xquad-r" / "en.json").read_text())
    answers = {qa["id"]: qa["answers"][0]["text"] for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"]}
    hits = sum(answers[g] in text[c] for g, c in zip(en.group, en.answer_cid, strict=True))
    assert hits >= 195  # a few answers straddle a sentence break in the source data


def test_mlqa_articles_are_language_independent(mlqa):
    de = mlqa.questions[mlqa.questions.lang == "de"]
    en = mlqa.questions[mlqa.questions.lang == "en"].set_index("group")
    assert (de.article.to_numpy() == en.loc[de.group, "article"].to_numpy()).all()
    assert "Olympic Council of Asia" in set(mlqa.candidates.article)


def test_training_pairs_cover_every_language_pair(mlqa):
    pairs = training_pairs(mlqa)
    sizes = mlqa.groups()
    assert len(pairs) == int((sizes**2).sum())  # X x Y for every group, X == Y included
    assert set(pairs.columns) == {"query", "passage", "query_lang", "passage_lang", "group", "article"}
    mono = pairs[pairs.query_lang == pairs.passage_lang]
    assert len(mono) == len(mlqa.questions)


def test_training_pairs_language_filter(xquad_small):
    pairs = training_pairs(xquad_small, query_langs=["en"], passage_langs=["de", "zh"])
    assert set(pairs.query_lang) == {"en"} and set(pairs.passage_lang) == {"de", "zh"}
    ds = data.to_hf_dataset(pairs, columns=["query", "passage"])
    assert ds.column_names == ["query", "passage"] and len(ds) == len(pairs)


def test_subset_keeps_parallel_groups(xquad):
    small = xquad.subset(languages=["en", "ru"], max_questions_per_lang=50, seed=1)
    assert small.questions.groupby("lang").size().to_dict() == {"en": 50, "ru": 50}
    assert all(len(r) == 2 for r in small.relevant.values())
    assert small.subset(languages=["en", "ru"], max_questions_per_lang=50, seed=1).questions.equals(
        xquad.subset(languages=["en", "ru"], max_questions_per_lang=50, seed=1).questions
    )


def test_unknown_language_and_dataset(shared_data_dir):
    with pytest.raises(DataError, match=r"unknown language\(s\) \['xx'\] for mlqa-r"):
        load_lareqa("mlqa-r", languages=["en", "xx"], data_dir=shared_data_dir)
    with pytest.raises(DataError, match="unknown dataset 'squad'"):
        load_lareqa("squad", data_dir=shared_data_dir)


def _broken_copy(tmp_path, shared_data_dir, mutate):
    target = tmp_path / "lareqa" / "xquad-r"
    target.mkdir(parents=True)
    doc = json.loads((shared_data_dir / "xquad-r" / "en.json").read_text())
    (target / "en.json").write_text(mutate(doc))
    return tmp_path / "lareqa", target / "en.json"


def test_truncated_json_names_the_file(tmp_path, shared_data_dir):
    root, path = _broken_copy(tmp_path, shared_data_dir, lambda d: json.dumps(d)[:5000])
    with pytest.raises(DataError, match=rf"{path}: not valid JSON"):
        load_lareqa("xquad-r", ["en"], data_dir=root, verify=False)
    with pytest.raises(DataError, match=rf"{path}: checksum mismatch"):
        load_lareqa("xquad-r", ["en"], data_dir=root)


def test_paragraph_without_sentences_names_file_and_place(tmp_path, shared_data_dir):
    def drop(doc):
        del doc["data"][3]["paragraphs"][2]["sentences"]
        return json.dumps(doc)

    root, path = _broken_copy(tmp_path, shared_data_dir, drop)
    with pytest.raises(DataError, match=rf"{path}: article 3 paragraph 2: missing field\(s\) \['sentences'\]"):
        load_lareqa("xquad-r", ["en"], data_dir=root, verify=False)


class _Response(stdio.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_verifies_checksum_and_leaves_nothing(tmp_path, shared_data_dir):
    good = (shared_data_dir / "mlqa-r" / "de.json").read_bytes()
    path = data.download("mlqa-r", "de", tmp_path, opener=lambda url, timeout: _Response(good))
    assert path.read_bytes() == good
    with pytest.raises(DataError, match=r"checksum mismatch for https://.*354d67d1.*/mlqa-r/es.json"):
        data.download("mlqa-r", "es", tmp_path, opener=lambda url, timeout: _Response(good))
    assert sorted(p.name for p in (tmp_path / "mlqa-r").iterdir()) == ["de.json"]  # no temp files left


def test_offline_without_files_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("HYBRIDIR_DATA_DIR", raising=False)
    monkeypatch.setenv("HYBRIDIR_ROOT", str(tmp_path))

    def offline(url, timeout):
        raise OSError("network unreachable")

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="HYBRIDIR_DATA_DIR"):
        load_lareqa("xquad-r", ["en"])


def test_atomic_outputs_are_readable_by_others(tmp_path):
    from hybridir_utils import io

    path = io.write_text(tmp_path / "a.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~io._UMASK  # like open(), not mkstemp's 0600
