"""The trainer's LAReQA evaluator gives the project's numbers (evaluate_lareqa) under the trainer's metric names."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from doubles import HashEncoder
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hybridir_utils.data.lareqa_loader import LAReQAData
from hybridir_utils.errors import DataError, EvaluationError, InputTypeError
from hybridir_utils.evaluation.evaluator import SUMMARY, LAReQAEvaluator, per_language
from hybridir_utils.evaluation.lareqa import evaluate_lareqa


def test_per_language_scores_by_hand():
    rows = [("mono", "en", "en", 1.0), ("mono", "en", "en", 0.5), ("mono", "de", "de", 0.0),
            ("cross", "en", "de", 1.0), ("cross", "en", "de", 0.0), ("cross", "en", "zh", 1.0),
            ("multi", "en", "multi", 0.25)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["setting", "query_lang", "pool_lang", "ap"])
    # cross en: the mean over pool languages (de 0.5, zh 1.0), not over queries (2/3)
    assert per_language(table) == {"mono_map_en": 0.75, "mono_map_de": 0.0, "cross_map_en": 0.75,
                                   "multi_map_en": 0.25}  # fmt: skip


def test_refuses_other_data_and_an_unknown_primary_metric(xquad_small):
    with pytest.raises(TypeError, match="LAReQAData"):
        LAReQAEvaluator(pd.DataFrame())
    with pytest.raises(ValueError, match="primary_metric 'ndcg' is not one of"):
        LAReQAEvaluator(xquad_small, primary_metric="ndcg")
    assert not LAReQAEvaluator(xquad_small, primary_metric="rank_distance").greater_is_better


def test_equals_the_project_evaluation_on_the_same_data(xquad_small, e5_model, tmp_path, tmp_cache):
    evaluator = LAReQAEvaluator(xquad_small, name="xq", keep_dir=tmp_path / "kept")
    got = evaluator(e5_model, steps=7)
    want = evaluate_lareqa(e5_model, xquad_small, tmp_path / "ref", batch_size=16, use_cache=False, write_runs=False)
    assert {k: got[f"xq_{k}"] for k in SUMMARY} == pytest.approx({k: want[k] for k in SUMMARY}, abs=1e-6)
    assert {lang: got[f"xq_multi_map_{lang}"] for lang in xquad_small.languages} == pytest.approx(
        want["multi_map_by_lang"], abs=1e-6
    )
    assert evaluator.primary_metric == "xq_multi_map" and (tmp_path / "kept" / "xq-step7" / "metrics.json").is_file()
    assert {f"xq_{s}_map_{lang}" for s in ("mono", "cross") for lang in ("en", "de", "zh")} <= set(got)


# ------------------------------------------------------------------ a user's evaluation set: refused before training
def _data(languages=("en", "de"), questions=None, candidates=None, relevant=None) -> LAReQAData:
    """Two parallel questions in en and de, each relevant to its answer sentence in both languages."""
    if questions is None:
        questions = pd.DataFrame([(f"{x}:q{g}", f"q{g}", x, f"question {g} {x}", "A", f"{x}:{g}") for g in range(2)
                                  for x in ("en", "de")], columns=["qid", "group", "lang", "text", "article",
                                                                   "answer_cid"])  # fmt: skip
    if candidates is None:
        candidates = pd.DataFrame([(f"{x}:{i}", x, f"sentence {i} {x}") for i in range(3) for x in ("en", "de")],
                                  columns=["cid", "lang", "text"])  # fmt: skip
    if relevant is None:
        relevant = {q: frozenset({f"en:{q[-1]}", f"de:{q[-1]}"}) for q in questions.qid}
    return LAReQAData("user", tuple(languages), questions, candidates, relevant)


def _with(table: pd.DataFrame, row: int, column: str, value) -> pd.DataFrame:
    table = table.copy().astype({column: object})
    table.at[row, column] = value
    return table


def test_a_consistent_user_set_is_accepted():
    assert LAReQAEvaluator(_data()).data.name == "user"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: _data(questions=d.questions.iloc[:0]), r"^data holds no questions \(an empty evaluation set"),
        (lambda d: _data(candidates=d.candidates.iloc[:0]), r"^data holds no candidates \(an empty evaluation set"),
        (lambda d: _data(candidates=_with(d.candidates, 3, "cid", "en:0")),
         r"^data.candidates: candidate id 'en:0' appears 2 times \(1 id repeats\)"),
        (lambda d: _data(questions=_with(d.questions, 2, "qid", "en:q0"), relevant=d.relevant),
         r"^data.questions: question id 'en:q0' appears 2 times \(1 id repeats\)"),
        (lambda d: _data(relevant={**d.relevant, "de:q1": frozenset()}),
         r"^1 question has no relevant candidate in data.relevant \(de:q1\)"),
        (lambda d: _data(relevant={k: v for k, v in d.relevant.items() if k != "en:q0"}),
         r"^1 question has no relevant candidate in data.relevant \(en:q0\)"),
        (lambda d: _data(relevant={**d.relevant, "en:q0": frozenset({"en:0", "xx:7"})}),
         r"^1 question has a relevant candidate that is not among data.candidates \(en:q0: 'xx:7'\)"),
        (lambda d: _data(languages=("en", "de", "th")), r"^language\(s\) \['th'\] of data.languages have no candidate"),
        (lambda d: _data(questions=_with(d.questions, 0, "lang", "fr")),
         r"^data.questions holds language\(s\) \['fr'\] that data.languages \(\['en', 'de'\]\) does not list"),
        (lambda d: _data(candidates=_with(d.candidates, 0, "lang", None)),
         r"^data.candidates holds language\(s\) \[None\] that data.languages"),
        (lambda d: _data(questions=d.questions.drop(columns="group")),
         r"^data.questions lacks column\(s\) \['group'\]"),
        (lambda d: _data(questions=_with(d.questions, 1, "text", " ")),
         r"^data.questions: 1 question has no text \(None, NaN or blank\): de:q0"),
        (lambda d: _data(candidates=_with(d.candidates, 4, "text", None)),
         r"^data.candidates: 1 candidate has no text \(None, NaN or blank\): en:2; give each a text or drop it$"),
        (lambda d: _data(candidates=_with(d.candidates, 5, "text", "")),
         r"^data.candidates: 1 candidate has no text \(None, NaN or blank\): de:2"),
        (lambda d: _data(candidates=_with(d.candidates, 5, "text", 42)),
         r"^data.candidates: 1 candidate has a text of type int, not a string: de:2; texts must be strings$"),
        (lambda d: _data(questions=_with(d.questions, 3, "qid", None), relevant=d.relevant),
         r"^data.questions: 1 question has no id \(None, NaN or blank\) in column 'qid' \(row 3\)"),
        (lambda d: _data(candidates=_with(d.candidates, 1, "cid", 1.5)),
         r"^data.candidates: 1 candidate has an id of type float in column 'cid' \(row 1\): ids must be strings"),
        (lambda d: _data(questions=_with(d.questions, 0, "group", float("nan"))),
         r"^data.questions: 1 question has no group \(None, NaN or blank\): en:q0; give each its parallel group"),
        (lambda d: _data(relevant={**d.relevant, "en:q1": "en:1"}),
         r"^data.relevant: the relevant candidates of 1 question are not a set of ids \(en:q1: str 'en:1'\)"),
        (lambda d: LAReQAData("user", "en", d.questions, d.candidates, d.relevant),
         r"^data.languages must be a list or tuple of language codes, got str"),
        (lambda d: _data(languages=()), r"^data.languages is empty"),
        (lambda d: _data(languages=("en", "de", "en")), r"^data.languages lists \['en'\] more than once"),
        (lambda d: _data(questions=list(d.questions.itertuples()), relevant=d.relevant),
         r"^data.questions must be a pandas DataFrame"),
        (lambda d: _data(relevant=list(d.relevant.items())), r"^data.relevant must be a mapping question id"),
    ],
)  # fmt: skip
def test_a_flawed_user_set_is_refused_when_the_evaluator_is_built(change, needle):
    """Before: accepted here, then an error (or silently skipped queries) at the first evaluation, mid-training."""
    with pytest.raises((EvaluationError, InputTypeError), match=needle):
        LAReQAEvaluator(change(_data()))


def test_every_flaw_of_the_content_at_once_with_the_first_ids_and_a_count():
    d = _data()
    questions = d.questions.assign(text=["", None, " ", "\t"], lang=["en", "de", "fr", "fr"])
    with pytest.raises(EvaluationError) as caught:
        LAReQAEvaluator(_data(questions=questions, relevant={"en:q0": frozenset({"en:0"})}))
    assert str(caught.value).splitlines() == [
        "data has 3 problems:",
        "  data.questions: 4 questions have no text (None, NaN or blank): en:q0, de:q0, en:q1, ...; give each a text "
        "or drop it",
        "  data.questions holds language(s) ['fr'] that data.languages (['en', 'de']) does not list (2 questions are "
        "outside: en:q1, de:q1): add the language to data.languages, or give those questions one of its languages, "
        "or drop them",
        "  3 questions have no relevant candidate in data.relevant (de:q0, en:q1, de:q1): each question needs the "
        "id(s) of its answer among data.candidates; add them or drop those questions",
    ]


def test_labels_that_are_not_strings_are_accepted():
    """Integer group ids and qids, categorical languages, numpy strings: the evaluation reads them as they are."""
    d = _data()
    questions = d.questions.assign(group=[0, 0, 1, 1], lang=pd.Categorical(d.questions.lang))
    candidates = d.candidates.assign(lang=pd.Categorical(d.candidates.lang, categories=["de", "en", "th"]))
    questions["qid"] = range(4)
    relevant = {i: frozenset({f"en:{i // 2}", f"de:{i // 2}"}) for i in range(4)}
    data = _data(languages=np.array(["en", "de"]), questions=questions, candidates=candidates, relevant=relevant)
    assert LAReQAEvaluator(data).data is data
    # a language with candidates and no question is a pool only (cross-lingual queries search it)
    assert LAReQAEvaluator(_data(questions=d.questions[d.questions.lang == "en"])).data.name == "user"
    # relevant ids as a numpy array (what groupby(...).cid.unique() gives): read as its items
    arrays = {k: np.array(sorted(v), dtype=object) for k, v in d.relevant.items()}
    assert LAReQAEvaluator(_data(relevant=arrays)).data.relevant is arrays
    with pytest.raises(EvaluationError, match=r"^1 question has no relevant candidate in data.relevant \(en:q0\)"):
        LAReQAEvaluator(_data(relevant={**arrays, "en:q0": np.array([], dtype=object)}))
    with pytest.raises(EvaluationError, match=r"^data.questions: 1 question has no article \(None, NaN or blank\)"):
        LAReQAEvaluator(_data(questions=d.questions.assign(article=["a", None, "a", "a"])))


def test_wrong_arguments_are_the_projects_errors():
    with pytest.raises(InputTypeError, match=r"data must be an LAReQAData .* got DataFrame"):
        LAReQAEvaluator(pd.DataFrame())
    with pytest.raises(EvaluationError, match="primary_metric 'ndcg' is not one of"):
        LAReQAEvaluator(_data(), primary_metric="ndcg")


# ------------------------------------------------------------------ property: generated user evaluation sets
EVAL_LANGS = ("en", "de", "zh")


def _blank(table, column, row, value):
    return table.astype({column: object}).assign(**{column: [value if i == row else v for i, v in
                                                             enumerate(table[column])]})  # fmt: skip


def _repeat(table, column, row):
    other = (row + 1) % len(table)
    return _blank(table, column, row, table[column].iloc[other]) if len(table) > 1 else table.iloc[:0]


# name -> (change of (languages, questions, candidates, relevant) at a drawn row, what the refusal must say)
EVAL_FLAWS = {
    "question without text": (lambda d, r, v: (d[0], _blank(d[1], "text", r, v), *d[2:]),
                              r"data\.questions: \d+ questions? ha(s|ve) no text|data holds no questions"),
    "candidate without text": (lambda d, r, v: (*d[:2], _blank(d[2], "text", r, v), d[3]),
                               r"data\.candidates: \d+ candidates? ha(s|ve) no text"),
    "repeated candidate id": (lambda d, r, v: (*d[:2], _repeat(d[2], "cid", r), d[3]),
                              r"data\.candidates: candidate id .* appears \d+ times|data holds no candidates"),
    "repeated question id": (lambda d, r, v: (d[0], _repeat(d[1], "qid", r), *d[2:]),
                             r"data\.questions: question id .* appears \d+ times|data holds no questions"),
    "no relevant candidate": (lambda d, r, v: (*d[:3], {**d[3], d[1].qid.iloc[r]: frozenset()}),
                              r"\d+ questions? ha(s|ve) no relevant candidate in data\.relevant"),
    "relevant id not a candidate": (lambda d, r, v: (*d[:3], {**d[3], d[1].qid.iloc[r]: d[3][d[1].qid.iloc[r]]
                                                              | {"zz:9"}}),
                                    r"a relevant candidate that is not among data\.candidates \(.*'zz:9'"),
    "unlisted language": (lambda d, r, v: (d[0], _blank(d[1], "lang", r, "fr"), *d[2:]),
                          r"data\.questions holds language\(s\) \['fr'\]"),
    "language without candidates": (lambda d, r, v: ((*d[0], "th"), *d[1:]),
                                    r"language\(s\) \['th'\] of data\.languages have no candidate"),
    "question without group": (lambda d, r, v: (d[0], _blank(d[1], "group", r, v), *d[2:]),
                               r"data\.questions: \d+ questions? ha(s|ve) no group"),
}  # fmt: skip


@st.composite
def user_evaluation_sets(draw):
    """A user's parallel QA set: groups in some of the languages, each question relevant to its group's answer in
    every language the group has, distractor sentences, ids and labels in the types users have; then flaws."""
    langs = tuple(draw(st.lists(st.sampled_from(EVAL_LANGS), min_size=1, max_size=3, unique=True)))
    questions, candidates, relevant = [], [(f"{x}:d", x, f"distractor {x}") for x in langs], {}
    for g in range(draw(st.integers(1, 5))):
        present = draw(st.lists(st.sampled_from(langs), min_size=1, max_size=len(langs), unique=True))
        answers = frozenset(f"{x}:{g}" for x in present)
        candidates += [(f"{x}:{g}", x, f"answer {g} in {x}") for x in present]
        for x in present:
            questions.append((f"{x}:q{g}", g, x, f"question {g} in {x}", f"article {g % 2}"))
            relevant[f"{x}:q{g}"] = answers
    q = pd.DataFrame(questions, columns=["qid", "group", "lang", "text", "article"])
    c = pd.DataFrame(candidates, columns=["cid", "lang", "text"])
    if draw(st.booleans()):
        q, c = q.astype({"lang": "category"}), c.astype({"lang": "category"})
    if draw(st.booleans()):  # group ids as text
        q["group"] = q["group"].map(str)
    data, applied = (langs, q, c, relevant), []
    for flaw in draw(st.lists(st.sampled_from(sorted(EVAL_FLAWS)), max_size=2, unique=True)):
        rows = len(data[2] if flaw == "candidate without text" else data[1])  # the table the flaw changes
        if rows and len(data[1]):  # an earlier flaw may have emptied it
            value = draw(st.sampled_from([None, float("nan"), "", "  "]))
            data = EVAL_FLAWS[flaw][0](data, draw(st.integers(0, rows - 1)), value)
            applied.append(flaw)
    return LAReQAData("user", *data), applied


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=user_evaluation_sets())
def test_a_generated_user_evaluation_set_is_refused_naming_its_flaw_or_scores_every_question(case):
    data, applied = case
    try:
        LAReQAEvaluator(data)
    except (EvaluationError, InputTypeError) as refusal:
        event("refused")
        assert applied, f"a clean set was refused: {refusal}"
        assert any(re.search(EVAL_FLAWS[f][1], str(refusal)) for f in applied), (applied, str(refusal))
        return
    event("accepted")
    assert not applied, f"accepted a set with {applied}"
    with tempfile.TemporaryDirectory() as tmp:
        m = evaluate_lareqa(HashEncoder(16), data, Path(tmp) / "out", use_cache=False, write_runs=False,
                            show_progress_bar=False)  # fmt: skip
        per_query = pd.read_parquet(Path(tmp) / "out" / m["files"]["per_query"])
    multi = per_query[per_query.setting == "multi"]
    assert sorted(multi.qid) == sorted(data.questions.qid) and (multi.n_relevant >= 1).all()


def test_from_dataset_reads_a_users_own_files_when_told_they_are_not_the_release(tmp_path):
    """The checksum refusal says "pass verify=False"; from_dataset must take it (it could not before)."""
    import json

    para = {"context": "ABC.DEF.", "sentences": ["ABC.", "DEF."], "sentence_breaks": [[0, 4], [4, 8]],
            "qas": [{"id": "q1", "question": "?", "answers": [{"answer_start": 4, "text": "DEF"}]}]}  # fmt: skip
    (tmp_path / "xquad-r").mkdir()
    (tmp_path / "xquad-r" / "en.json").write_text(json.dumps({"data": [{"title": "T", "paragraphs": [para]}]}))
    with pytest.raises(DataError, match=r"checksum mismatch .*pass verify=False"):
        LAReQAEvaluator.from_dataset("xquad-r", languages=["en"], data_dir=tmp_path)
    evaluator = LAReQAEvaluator.from_dataset("xquad-r", languages=["en"], data_dir=tmp_path, verify=False)
    assert evaluator.data.relevant == {"en:q1": frozenset({"en:0:0:1"})}
