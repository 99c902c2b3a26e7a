"""Loader tests on the real shared LAReQA files, plus bad-input cases on broken copies."""

from __future__ import annotations

import io as stdio
import json
from collections import Counter

import pandas as pd
import pytest

from hybridir_utils.data import lareqa_loader, splits
from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
from hybridir_utils.errors import DataError

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


def _unique_answer_sentences(path, lang):
    """qid -> cid of the one sentence of its paragraph that contains the answer text (answers in 0 or 2+ skipped)."""
    out = {}
    for a_idx, article in enumerate(json.loads(path.read_text(encoding="utf-8"))["data"]):
        for p_idx, para in enumerate(article["paragraphs"]):
            for qa in para["qas"]:
                hits = [i for i, s in enumerate(para["sentences"]) if qa["answers"][0]["text"] in s]
                if len(hits) == 1:
                    out[f"{lang}:{qa['id']}"] = f"{lang}:{a_idx}:{p_idx}:{hits[0]}"
    return out


# Questions whose answer text occurs in exactly one sentence of its paragraph, per dataset and language.
UNIQUE_ANSWERS = {
    "xquad-r": {"ar": 1074, "de": 1078, "el": 1090, "en": 1073, "es": 1074, "hi": 1053, "ru": 1116, "th": 1072,
                "tr": 1074, "vi": 1049, "zh": 1032},
    "mlqa-r": {"ar": 448, "de": 456, "en": 983, "es": 453, "hi": 444, "vi": 436, "zh": 441},
}  # fmt: skip


@pytest.mark.parametrize("name", ["xquad-r", "mlqa-r"])
def test_answer_in_one_sentence_gets_that_sentence(name, request, shared_data_dir):
    """Where the answer text is in one sentence only, that sentence is the label (the old rule missed 47)."""
    ds = request.getfixturevalue("xquad" if name == "xquad-r" else "mlqa")
    label = dict(zip(ds.questions.qid, ds.questions.answer_cid, strict=True))
    checked, wrong = {}, {}
    for lang in lareqa_loader.LANGUAGES[name]:
        expected = _unique_answer_sentences(shared_data_dir / name / f"{lang}.json", lang)
        checked[lang] = len(expected)
        wrong |= {qid: (label[qid], cid) for qid, cid in expected.items() if label[qid] != cid}
    print(f"{name}: single-sentence answers checked per language {checked}")
    assert wrong == {}, f"{name}: {len(wrong)} labels miss the answer's sentence, e.g. {list(wrong.items())[:3]}"
    assert checked == UNIQUE_ANSWERS[name] and min(checked.values()) > 400
    assert sum(map(sum, (d.values() for d in UNIQUE_ANSWERS.values()))) == 15446


@pytest.fixture(scope="module")
def label_report(shared_data_dir):
    return pd.concat(
        [lareqa_loader.answer_label_report(n, data_dir=shared_data_dir) for n in lareqa_loader.LANGUAGES],
        ignore_index=True,
    )


def test_answer_label_report_counts(label_report, shared_data_dir):
    assert list(label_report.columns) == ["dataset", "lang", "questions", "changed", "fallback"]
    assert len(label_report) == 11 + 7 and label_report.questions.sum() == 1190 * 11 + sum(MLQA_QUESTIONS.values())
    changed = label_report[label_report.changed > 0].set_index(["dataset", "lang"]).changed.to_dict()
    assert changed == {("xquad-r", "hi"): 1, ("xquad-r", "zh"): 29, ("mlqa-r", "hi"): 3, ("mlqa-r", "vi"): 1,
                       ("mlqa-r", "zh"): 29}  # fmt: skip
    fallback = label_report.set_index(["dataset", "lang"]).fallback
    assert fallback["xquad-r"].to_dict() == {"ar": 10, "de": 8, "el": 13, "en": 3, "es": 12, "hi": 11, "ru": 2,
                                             "th": 9, "tr": 21, "vi": 13, "zh": 11}  # fmt: skip
    assert fallback["mlqa-r"].to_dict() == {"ar": 3, "de": 8, "en": 2, "es": 5, "hi": 3, "vi": 1, "zh": 3}
    assert (label_report.changed.sum(), label_report.fallback.sum()) == (63, 138)
    # on the real data a fallback happens exactly when no sentence of the paragraph contains the answer text
    for row in label_report.itertuples():
        raw = json.loads((shared_data_dir / row.dataset / f"{row.lang}.json").read_text(encoding="utf-8"))
        paras = [p for a in raw["data"] for p in a["paragraphs"]]
        nowhere = sum(all(qa["answers"][0]["text"] not in s for s in p["sentences"]) for p in paras for qa in p["qas"])
        assert row.fallback == nowhere, (row.dataset, row.lang)


def _tiny_copy(tmp_path, qas):
    """A one-paragraph XQuAD-R en file whose two sentence spans share the boundary at offset 4, as in zh."""
    para = {"context": "ABC.DEF.", "sentences": ["ABC.", "DEF."], "sentence_breaks": [[0, 4], [4, 8]], "qas": qas}
    target = tmp_path / "xquad-r"
    target.mkdir(parents=True, exist_ok=True)
    (target / "en.json").write_text(json.dumps({"data": [{"title": "T", "paragraphs": [para]}]}))
    return tmp_path, target / "en.json"


def _qa(qa_id, start, text):
    return {"id": qa_id, "question": "?", "answers": [{"answer_start": start, "text": text}]}


def test_answer_on_shared_boundary_gets_its_own_sentence(tmp_path):
    """The old rule (first span with lo <= start <= hi) labels "DEF" at 4 with sentence 0, which lacks it."""
    qas = [_qa("on_boundary", 4, "DEF"), _qa("inside", 1, "BC"), _qa("straddles", 2, "C.D")]
    root, _ = _tiny_copy(tmp_path, qas)
    ds = load_lareqa("xquad-r", ["en"], data_dir=root, verify=False)
    assert ds.questions.set_index("group").answer_cid.to_dict() == {
        "on_boundary": "en:0:0:1",  # the sentence that contains the answer
        "inside": "en:0:0:0",
        "straddles": "en:0:0:0",  # no sentence contains "C.D": the span rule decides, as before
    }
    report = lareqa_loader.answer_label_report("xquad-r", ["en"], data_dir=root, verify=False)
    assert report.iloc[0].to_dict() == {"dataset": "xquad-r", "lang": "en", "questions": 3, "changed": 1, "fallback": 1}


def test_answer_outside_every_sentence_names_the_question(tmp_path):
    root, path = _tiny_copy(tmp_path, [_qa("q1", 1, "BC"), _qa("lost", 9, "X")])
    with pytest.raises(DataError, match=rf"{path}: article 0 paragraph 0 question 'lost': answer 'X' at 9 lies in no"):
        load_lareqa("xquad-r", ["en"], data_dir=root, verify=False)


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
    ds = lareqa_loader.to_hf_dataset(pairs, columns=["query", "passage"])
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
    path = lareqa_loader.download("mlqa-r", "de", tmp_path, opener=lambda url, timeout: _Response(good))
    assert path.read_bytes() == good
    with pytest.raises(DataError, match=r"checksum mismatch for https://.*354d67d1.*/mlqa-r/es.json"):
        lareqa_loader.download("mlqa-r", "es", tmp_path, opener=lambda url, timeout: _Response(good))
    assert sorted(p.name for p in (tmp_path / "mlqa-r").iterdir()) == ["de.json"]  # no temp files left


def test_offline_without_files_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("HYBRIDIR_DATA_DIR", raising=False)
    monkeypatch.setenv("HYBRIDIR_ROOT", str(tmp_path))

    def offline(url, timeout):
        raise OSError("network unreachable")

    monkeypatch.setattr(lareqa_loader.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match="HYBRIDIR_DATA_DIR"):
        load_lareqa("xquad-r", ["en"])


def test_atomic_outputs_are_readable_by_others(tmp_path):
    from hybridir_utils.utils import atomic

    path = atomic.write_text(tmp_path / "a.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~atomic._UMASK  # like open(), not mkstemp's 0600


def test_split_articles_holds_out_whole_articles(mlqa):
    train, dev = splits.split_articles(mlqa, 0.15, seed=0)
    assert not set(train.questions.article) & set(dev.questions.article)
    assert not set(train.candidates.article) & set(dev.candidates.article)
    assert not set(train.questions.group) & set(dev.questions.group)  # a group never straddles the split
    n = mlqa.questions.article.nunique()
    assert dev.questions.article.nunique() == round(0.15 * n) and train.questions.article.nunique() == n - round(
        0.15 * n
    )
    again, other = splits.split_articles(mlqa, 0.15, seed=0)[1], splits.split_articles(mlqa, 0.15, seed=1)[1]
    assert set(again.questions.article) == set(dev.questions.article) != set(other.questions.article)


@pytest.mark.parametrize("share", [0.0, 1.0, -0.1])
def test_split_articles_rejects_bad_shares(mlqa, share):
    with pytest.raises(DataError, match="dev_share"):
        splits.split_articles(mlqa, share)


def test_explicit_data_dir_is_the_only_source_and_is_recorded(tmp_path, shared_data_dir):
    """Issue 12 defect 2: a data_dir without de.json must not load de from $HYBRIDIR_DATA_DIR, file by file."""
    (tmp_path / "xquad-r").mkdir()
    (tmp_path / "xquad-r" / "en.json").write_bytes((shared_data_dir / "xquad-r" / "en.json").read_bytes())
    with pytest.raises(DataError, match=rf"{tmp_path / 'xquad-r' / 'de.json'} not found"):
        load_lareqa("xquad-r", ["en", "de"], data_dir=tmp_path)
    with pytest.raises(DataError, match=r"/nonexistent/dir/xquad-r/en\.json not found"):
        load_lareqa("xquad-r", ["en"], data_dir="/nonexistent/dir")
    ds = load_lareqa("xquad-r", ["en"], data_dir=tmp_path)
    assert ds.files == {"en": str((tmp_path / "xquad-r" / "en.json").resolve())}
    assert ds.subset(articles=ds.questions.article.iloc[0]).files == ds.files


def test_hybridir_data_dir_is_the_only_source_when_set(tmp_path, shared_data_dir, monkeypatch):
    """The variable is an explicit choice too: a language missing there is an error, not a download or a cache."""
    (tmp_path / "xquad-r").mkdir()
    (tmp_path / "xquad-r" / "en.json").write_bytes((shared_data_dir / "xquad-r" / "en.json").read_bytes())
    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=r"de\.json not found \(HYBRIDIR_DATA_DIR=.* is the only source"):
        load_lareqa("xquad-r", ["en", "de"])
    assert load_lareqa("xquad-r", ["en"]).files == {"en": str((tmp_path / "xquad-r" / "en.json").resolve())}


def _set(path_fn, value):
    def mutate(doc):
        obj, key = path_fn(doc)
        obj[key] = value
        return json.dumps(doc)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (_set(lambda d: (d["data"][1]["paragraphs"][0]["qas"][2]["answers"][0], "answer_start"), "12"),
         r"article 1 paragraph 0 question '[0-9a-f]+': answer_start must be an integer >= 0, got '12'"),
        (_set(lambda d: (d["data"][1]["paragraphs"][0]["sentence_breaks"], 0), [5]),
         r"article 1 paragraph 0: sentence_breaks must be a list of \[start, end\] integer pairs, found \[5\]"),
        (_set(lambda d: (d["data"][1], "paragraphs"), None), r"article 1: 'paragraphs' must be a list, got NoneType"),
        (_set(lambda d: (d["data"][1]["paragraphs"][0]["qas"][0], "question"), 7),
         r"article 1 paragraph 0 question '[0-9a-f]+': id, question and answer text must be strings"),
    ],
)  # fmt: skip
def test_wrong_field_types_name_file_article_paragraph_question(tmp_path, shared_data_dir, mutate, needle):
    """Issue 12 defect 5: wrong types were raw TypeError / ValueError; now a DataError naming the place."""
    root, path = _broken_copy(tmp_path, shared_data_dir, mutate)
    with pytest.raises(DataError, match=rf"{path}: {needle}"):
        load_lareqa("xquad-r", ["en"], data_dir=root, verify=False)


def test_mlqa_question_missing_from_english_names_the_question(tmp_path, shared_data_dir):
    """Issue 12 defect 5: was AttributeError: 'float' object has no attribute 'replace'."""
    target = tmp_path / "mlqa-r"
    target.mkdir()
    de = json.loads((shared_data_dir / "mlqa-r" / "de.json").read_text())
    (target / "de.json").write_text(json.dumps(de))
    lost = de["data"][0]["paragraphs"][0]["qas"][0]["id"]
    en = json.loads((shared_data_dir / "mlqa-r" / "en.json").read_text())
    for article in en["data"]:
        for para in article["paragraphs"]:
            para["qas"] = [qa for qa in para["qas"] if qa["id"] != lost]
    (target / "en.json").write_text(json.dumps(en))
    with pytest.raises(DataError, match=rf"{target / 'de.json'}: article 0 paragraph 0 question '{lost}': not in"):
        load_lareqa("mlqa-r", ["de"], data_dir=tmp_path, verify=False)


def test_truncated_share_counts_texts_past_the_cutoff():
    lengths = pd.DataFrame({"dataset": "xquad-r", "kind": "candidate", "lang": ["th", "th", "th", "th", "en"],
                            "tokens": [10, 96, 97, 400, 50]})  # fmt: skip
    out = lareqa_loader.truncated_share(lengths, 96).set_index("lang")
    assert out.loc["th", "share_cut"] == 0.5 and out.loc["th", "texts"] == 4  # 97 and 400 are cut, 96 fits
    assert out.loc["en", "share_cut"] == 0.0 and (out.cutoff == 96).all()


def test_a_duplicated_question_id_is_an_error_naming_both_places(tmp_path, shared_data_dir):
    """Issue 25 defect 2: a qas entry copied into another paragraph loaded as 1,191 questions, its id relevant to
    two sentences of two articles."""

    def copy_qa(d):
        d["data"][1]["paragraphs"][0]["qas"].append(dict(d["data"][0]["paragraphs"][0]["qas"][0]))
        return json.dumps(d)

    root, path = _broken_copy(tmp_path, shared_data_dir, copy_qa)
    with pytest.raises(DataError, match=rf"{path}: question id '[0-9a-f]+' appears twice, in article 0 paragraph 0 "
                       r"and in article 1 paragraph 0; ids must be unique within a file"):  # fmt: skip
        load_lareqa("xquad-r", ["en"], data_dir=root, verify=False)


def test_an_id_must_name_the_same_article_in_every_language(tmp_path, shared_data_dir):
    target = tmp_path / "xquad-r"
    target.mkdir()
    for lang in ("en", "de"):
        doc = json.loads((shared_data_dir / "xquad-r" / f"{lang}.json").read_text())
        if lang == "de":  # swap the ids of one question of article 0 and one of article 1
            a, b = doc["data"][0]["paragraphs"][0]["qas"][0], doc["data"][1]["paragraphs"][0]["qas"][0]
            a["id"], b["id"] = b["id"], a["id"]
        (target / f"{lang}.json").write_text(json.dumps(doc))
    with pytest.raises(
        DataError,
        match=r"question id '[0-9a-f]+' names questions of different articles across "
        r"languages \(.*en.json: article .*; .*de.json: article .*\); 2 such id\(s\) in all",
    ):
        load_lareqa("xquad-r", ["en", "de"], data_dir=tmp_path, verify=False)


def test_every_shared_file_has_unique_parallel_ids(shared_data_dir):
    """The real files pass both id checks (all languages of both sets)."""
    for name in ("xquad-r", "mlqa-r"):
        ds = load_lareqa(name, data_dir=shared_data_dir)
        assert ds.questions.qid.is_unique and ds.questions.groupby("group").article.nunique().max() == 1


# ------------------------------------------------------------------ a user's own files: one clear error each
def _user_files(tmp_path, qas=None, doc=None, lang="en"):
    """A user's folder holding one SQuAD-style xquad-r file (one paragraph of two sentences, two questions)."""
    qas = [_qa("q1", 0, "ABC"), _qa("q2", 4, "DEF")] if qas is None else qas
    para = {"context": "ABC.DEF.", "sentences": ["ABC.", "DEF."], "sentence_breaks": [[0, 4], [4, 8]], "qas": qas}
    (tmp_path / "xquad-r").mkdir(exist_ok=True)
    path = tmp_path / "xquad-r" / f"{lang}.json"
    doc = {"data": [{"title": "T", "paragraphs": [para]}]} if doc is None else doc
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_a_consistent_user_file_loads(tmp_path):
    _user_files(tmp_path)
    ds = load_lareqa("xquad-r", ["en"], data_dir=tmp_path, verify=False)
    assert ds.questions.answer_cid.tolist() == ["en:0:0:0", "en:0:0:1"] and len(ds.candidates) == 2


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        (lambda p: _user_files(p, doc='{"data": [{"title": "T", "paragraphs": ['),
         r"xquad-r/en\.json: not valid JSON \(.*line 1 column \d+.*\): the file is cut short or is not JSON; "
         r"write it again \(json\.dump\) or fetch it again"),
        (lambda p: _user_files(p, doc=[{"title": "T"}]),
         r"xquad-r/en\.json: expected a SQuAD-style object with a 'data' list of articles, got a list"),
        (lambda p: _user_files(p, doc={"version": "1.1", "articles": []}),
         r"xquad-r/en\.json: expected a SQuAD-style object with a 'data' list of articles, got an object with keys "
         r"\['version', 'articles'\]"),
        (lambda p: _user_files(p, qas=[_qa("q1", 0, "ABC"), {"id": "q2", "question": "?", "answers": []}]),
         r"xquad-r/en\.json: article 0 paragraph 0 question 'q2': no answers \(an empty 'answers' list\): each "
         r"question needs answers\[0\] with its text and answer_start; give it its answer or drop the question"),
        (lambda p: _user_files(p, qas=[{"id": "q1", "question": "?"}]),
         r"xquad-r/en\.json: article 0 paragraph 0 question 'q1': missing field\(s\) \['answers'\]"),
        (lambda p: _user_files(p, qas=[{"question": "?", "answers": [{"answer_start": 0, "text": "ABC"}]}]),
         r"xquad-r/en\.json: article 0 paragraph 0 qas\[0\]: missing field\(s\) \['id'\]: each question needs an id"),
        (lambda p: _user_files(p, qas=[{"id": "q1", "question": "?", "answers": [{"text": "ABC"}]}]),
         r"xquad-r/en\.json: article 0 paragraph 0 question 'q1': answers\[0\] lacks \['answer_start'\]"),
        (lambda p: _user_files(p, qas=[]),
         r"xquad-r/en\.json: no questions \(an empty split: 1 article, 1 paragraph, 0 questions\): the file must "
         r"hold questions to train or evaluate on; check that the right split was exported"),
        (lambda p: _user_files(p, doc={"data": []}),
         r"xquad-r/en\.json: no questions \(an empty split: 0 articles, 0 paragraphs, 0 questions\)"),
        (lambda p: (p / "xquad-r").mkdir(),
         r"xquad-r/en\.json not found \(data_dir=.* is the only source when given\): put the 'en' file there "
         r"\(SQuAD-style JSON, as in LAReQA\), or leave 'en' out of languages"),
        (lambda p: None,
         r"xquad-r/en\.json not found: data_dir=.* has no xquad-r folder \(the files must lie in "
         r"<data_dir>/xquad-r/<language>\.json\)"),
    ],
)  # fmt: skip
def test_a_flawed_user_file_is_one_clear_error_naming_it(tmp_path, files, needle):
    """Before: a bare message without what to do, a raw KeyError-style text, or an empty split loaded silently."""
    files(tmp_path)
    with pytest.raises(DataError, match=needle):
        load_lareqa("xquad-r", ["en"], data_dir=tmp_path, verify=False)


def test_a_user_file_that_cannot_be_read_names_it(tmp_path):
    (tmp_path / "xquad-r" / "en.json").mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(DataError, match=r"xquad-r/en\.json not found .*: put the 'en' file there"):
        load_lareqa("xquad-r", ["en"], data_dir=tmp_path, verify=False)
    _user_files(tmp_path, lang="de", doc="")
    (tmp_path / "xquad-r" / "de.json").write_bytes(b"\xff\xfe{not utf-8")
    with pytest.raises(DataError, match=r"xquad-r/de\.json: not valid JSON \(.*utf-8.*\): the file is cut short or"):
        load_lareqa("xquad-r", ["de"], data_dir=tmp_path, verify=False)
