"""The LAReQA evaluation as a sentence-transformers evaluator, for ``eval_strategy`` inside anyone's training.

No pooled multilingual evaluation exists in MTEB, and per-language LAReQA scores are asked for; this evaluator gives
both during training: monolingual, cross-lingual and multilingual-pool mAP, R@1 and R@10, per-language mAP and rank
distance, under the names the trainer logs (``<name>_multi_map``, ``<name>_mono_map_en`` ...). It calls
:func:`evaluation.lareqa.evaluate_lareqa`, so its numbers are the project's (a test checks equality), with the
embedding cache off: the weights change between evaluations, so a cached embedding would be stale. A user's set is
checked when the evaluator is built (:func:`check_evaluation_data`), not at the first evaluation mid-training.

    from hybridir_utils.evaluation.evaluator import LAReQAEvaluator
    evaluator = LAReQAEvaluator.from_dataset("xquad-r", languages=["en", "de", "th"])
    trainer = SentenceTransformerTrainer(..., evaluator=evaluator)  # args: eval_strategy="steps", eval_steps=...
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from hybridir_utils.data.lareqa_loader import LAReQAData, load_lareqa
from hybridir_utils.errors import EvaluationError, InputTypeError
from hybridir_utils.evaluation.lareqa import SETTINGS, evaluate_lareqa, language_means
from hybridir_utils.utils import paths

# What every evaluation returns besides the per-language scores (metrics.json keys of evaluate_lareqa).
SUMMARY = (*(f"{s}_{m}" for s in SETTINGS for m in ("map", "r1", "r10")), "rank_distance")


class LAReQAEvaluator(SentenceEvaluator):
    """Pooled LAReQA retrieval of a :class:`~hybridir_utils.data.LAReQAData` test set (see the module docstring).

    Args:
        data: the questions, candidates and relevance of the test set (``data.load_lareqa``).
        name: prefix of every logged metric.
        batch_size: encoding batch size.
        primary_metric: the metric ``load_best_model_at_end`` selects on (default: multilingual-pool mAP).
        keep_dir: a folder to keep each evaluation's tables in (``<keep_dir>/<name>-step<k>/``); default: none.
    """

    def __init__(
        self,
        data: LAReQAData,
        name: str = "lareqa",
        batch_size: int = 16,
        primary_metric: str = "multi_map",
        keep_dir: str | Path | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__()
        check_evaluation_data(data)  # a flawed set is refused here, not at the first evaluation mid-training
        known = (*SUMMARY, *(f"{s}_map_{lang}" for s in SETTINGS for lang in data.languages))
        if primary_metric not in known:
            raise EvaluationError(f"primary_metric {primary_metric!r} is not one of {list(known)}")
        self.data, self.name, self.batch_size = data, name, int(batch_size)
        self.primary_metric, self.greater_is_better = primary_metric, primary_metric != "rank_distance"
        self.keep_dir, self.show_progress_bar = (Path(keep_dir) if keep_dir else None), show_progress_bar

    @classmethod
    def from_dataset(cls, dataset: str = "xquad-r", languages: Sequence[str] | None = None,
                     data_dir: str | Path | None = None, verify: bool = True,
                     **kwargs: Any) -> LAReQAEvaluator:  # fmt: skip
        """The evaluator of a LAReQA set by name (``xquad-r`` / ``mlqa-r``), in ``languages`` (None: all);
        ``verify=False`` reads files that are not the pinned release (your own, in the same layout)."""
        data = load_lareqa(dataset, data_dir=paths.lareqa_dir(data_dir), languages=languages, verify=verify)
        return cls(data, **kwargs)

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        with tempfile.TemporaryDirectory(prefix="lareqa-eval-") as tmp:
            folder = (self.keep_dir or Path(tmp)) / f"{self.name}-step{steps}"
            m = evaluate_lareqa(model, self.data, folder, batch_size=self.batch_size, use_cache=False,
                                write_runs=False, show_progress_bar=self.show_progress_bar)  # fmt: skip
            per_query = pd.read_parquet(folder / m["files"]["per_query"])
        metrics = {
            **{k: float(m[k]) for k in SUMMARY},
            **per_language(per_query),
            **{f"rank_distance_{lang}": float(v) for lang, v in m.get("rank_distance_by_lang", {}).items()},
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        return {"dataset": self.data.name, "languages": list(self.data.languages), "protocol": "LAReQA (pooled)"}


def per_language(per_query: pd.DataFrame) -> dict[str, float]:
    """``<setting>_map_<query language>`` (:func:`lareqa.language_means`, as ``report.per_language``)."""
    return {f"{setting}_map_{lang}": float(v) for (setting, lang), v in language_means(per_query).items()}


# ------------------------------------------------------------------ a user's evaluation set, checked once
QUESTION_COLUMNS = ("qid", "group", "lang", "text", "article")  # what the evaluation reads of data.questions
CANDIDATE_COLUMNS = ("cid", "lang", "text")  # ... and of data.candidates
_SHOWN = 3  # offending ids a message names


def check_evaluation_data(data: Any) -> None:
    """Refuse an evaluation set the LAReQA evaluation cannot score as meant, each flaw with what to do.

    In order, each stage stopping at its first failure: the types (an LAReQAData with DataFrames and a mapping);
    the columns and that neither table is empty; ids, present and unique in each table; then, every flaw at once:
    texts (strings with a non-blank character), languages (every row's language among ``data.languages``, every
    listed language with candidates) and relevance (every question with at least one relevant candidate, each one
    among the candidates). Unchecked, these failed at the first evaluation, mid-training, or scored silently wrong
    (a repeated candidate id counts one sentence twice; a question without an answer in a pool is skipped).
    """
    _check_types(data)
    for what, table, columns in (("questions", data.questions, QUESTION_COLUMNS),
                                 ("candidates", data.candidates, CANDIDATE_COLUMNS)):  # fmt: skip
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise EvaluationError(f"data.{what} lacks column(s) {missing}; it has {list(table.columns)}: the "
                                  f"evaluation reads {list(columns)} (see LAReQAData)")  # fmt: skip
    for what, table in (("questions", data.questions), ("candidates", data.candidates)):
        if table.empty:
            raise EvaluationError(
                f"data holds no {what} (an empty evaluation set): the split or the language "
                f"selection that built it left none; check it, or evaluate another split"
            )
    _raise(_id_problems(data.questions, "qid", "question") + _id_problems(data.candidates, "cid", "candidate"))
    problems = _text_problems(data.questions, "question", "qid") + _text_problems(data.candidates, "candidate", "cid")
    problems += _label_problems(data.questions, "question", "qid", "group", "its parallel group id")
    problems += _label_problems(data.questions, "question", "qid", "article", "an article")
    _raise(problems + _language_problems(data) + _relevance_problems(data))


def _check_types(data: Any) -> None:
    if not isinstance(data, LAReQAData):
        raise InputTypeError(f"data must be an LAReQAData (hybridir_utils.data.load_lareqa, or built from your own "
                             f"questions, candidates and relevance), got {type(data).__name__}")  # fmt: skip
    for what in ("questions", "candidates"):
        if not isinstance(getattr(data, what), pd.DataFrame):
            raise InputTypeError(f"data.{what} must be a pandas DataFrame, got {type(getattr(data, what)).__name__}")
    if not isinstance(data.relevant, Mapping):
        raise InputTypeError(f"data.relevant must be a mapping question id -> set of relevant candidate ids, got "
                             f"{type(data.relevant).__name__}")  # fmt: skip
    languages = data.languages
    if isinstance(languages, str) or not isinstance(languages, Iterable):
        raise InputTypeError(f"data.languages must be a list or tuple of language codes, got "
                             f"{type(languages).__name__} {languages!r}")  # fmt: skip
    languages = list(languages)
    if not languages:
        raise EvaluationError("data.languages is empty: list the languages to evaluate")
    twice = sorted({lang for lang in languages if languages.count(lang) > 1}, key=str)
    if twice:
        raise EvaluationError(f"data.languages lists {twice} more than once ({languages}): list each language once")


def _raise(problems: list[str]) -> None:
    if len(problems) == 1:
        raise EvaluationError(problems[0])
    if problems:
        raise EvaluationError(f"data has {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))


def _missing(values: np.ndarray) -> np.ndarray:
    """None, NaN or a blank string."""
    missing = pd.isna(values)
    missing[~missing] = [isinstance(v, str) and not v.strip() for v in values[~missing]]
    return missing


def _some(ids) -> str:
    """The first ids (or rows) a message names."""
    ids = list(ids)
    return ", ".join(map(str, ids[:_SHOWN])) + (", ..." if len(ids) > _SHOWN else "")


def _counted(n: int, noun: str, verb: str = "has") -> str:
    """'1 question has' / '2 questions have' (verb: has, is, repeats)."""
    plural = {"has": "have", "is": "are", "repeats": "repeat"}[verb]
    return f"{n} {noun}{'' if n == 1 else 's'} {verb if n == 1 else plural}"


def _id_problems(table: pd.DataFrame, column: str, noun: str) -> list[str]:
    values = table[column].to_numpy(dtype=object)
    missing = _missing(values)
    found = []
    if missing.any():
        rows = np.flatnonzero(missing)
        found.append(f"data.{noun}s: {_counted(len(rows), noun)} no id (None, NaN or blank) in column {column!r} "
                     f"(row{'s' if len(rows) > 1 else ''} {_some(rows)}): give every {noun} an id")  # fmt: skip
    other = ~missing & np.fromiter((not isinstance(v, str | int | np.integer) or isinstance(v, bool) for v in values),
                                   dtype=bool, count=len(values))  # fmt: skip
    if other.any():
        rows = np.flatnonzero(other)
        found.append(f"data.{noun}s: {_counted(len(rows), noun)} an id of type "
                     f"{'/'.join(sorted({type(v).__name__ for v in values[other]}))} in column {column!r} "
                     f"(row{'s' if len(rows) > 1 else ''} {_some(rows)}): ids must be strings or integers")  # fmt: skip
        missing |= other
    counts = pd.Series(values[~missing], dtype=object).value_counts(sort=True)
    repeated = counts[counts > 1]
    if len(repeated):
        others = f": {_some(map(repr, repeated.index))}" if len(repeated) > 1 else ""
        found.append(f"data.{noun}s: {noun} id {repeated.index[0]!r} appears {repeated.iloc[0]} times "
                     f"({_counted(len(repeated), 'id', 'repeats')}{others}): one id must name one {noun}; make the "
                     "ids unique (e.g. prefix the language) or drop the copies")  # fmt: skip
    return found


def _text_problems(table: pd.DataFrame, noun: str, id_column: str) -> list[str]:
    """Texts: strings with a non-blank character (the encoder would take a blank one for a text)."""
    values, ids = table.text.to_numpy(dtype=object), table[id_column].to_numpy(dtype=object)
    missing = _missing(values)
    other = ~missing & np.fromiter((not isinstance(v, str) for v in values), dtype=bool, count=len(values))
    found = []
    if missing.any():
        found.append(f"data.{noun}s: {_counted(int(missing.sum()), noun)} no text (None, NaN or blank): "
                     f"{_some(ids[missing])}; give each a text or drop it")  # fmt: skip
    if other.any():
        kinds = "/".join(sorted({type(v).__name__ for v in values[other]}))
        found.append(f"data.{noun}s: {_counted(int(other.sum()), noun)} a text of type {kinds}, not a string: "
                     f"{_some(ids[other])}; texts must be strings")  # fmt: skip
    return found


def _label_problems(table: pd.DataFrame, noun: str, id_column: str, column: str, what: str) -> list[str]:
    missing = _missing(table[column].to_numpy(dtype=object))
    if not missing.any():
        return []
    return [
        f"data.{noun}s: {_counted(int(missing.sum()), noun)} no {column} (None, NaN or blank): "
        f"{_some(table[id_column].to_numpy(dtype=object)[missing])}; give each {what}"
    ]


def _language_problems(data: LAReQAData) -> list[str]:
    """Every row's language is listed; every listed language has candidates (a pool to search)."""
    listed, found = list(data.languages), []
    for noun, table in (("question", data.questions), ("candidate", data.candidates)):
        langs = table.lang.to_numpy(dtype=object)
        outside = ~pd.Series(langs, dtype=object).isin(listed).to_numpy()
        if outside.any():
            unlisted = sorted(set(langs[outside]), key=str)
            ids = table[("qid" if noun == "question" else "cid")].to_numpy(dtype=object)[outside]
            found.append(f"data.{noun}s holds language(s) {unlisted} that data.languages ({listed}) does not list "
                         f"({_counted(int(outside.sum()), noun, 'is')} outside: {_some(ids)}): add the language to "
                         f"data.languages, or give those {noun}s one of its languages, or drop them")  # fmt: skip
    pooled = set(data.candidates.lang.to_numpy(dtype=object).tolist())
    empty = [lang for lang in listed if lang not in pooled]
    if empty:
        found.append(
            f"language(s) {empty} of data.languages have no candidate: their pool would be empty, so no "
            "question could be ranked in them; add their candidates or drop them from data.languages"
        )
    return found


def _relevance_problems(data: LAReQAData) -> list[str]:
    """Every question has a relevant candidate, and each is among the candidates."""
    known = set(data.candidates.cid.to_numpy(dtype=object).tolist())
    none, unknown, malformed, found = [], [], [], []
    for qid in data.questions.qid.to_numpy(dtype=object):
        rel = data.relevant.get(qid)
        if isinstance(rel, str) or (rel is not None and not isinstance(rel, Iterable)):
            malformed.append(f"{qid}: {type(rel).__name__} {rel!r}")  # a bare str would be read letter by letter
        elif not (rel := [] if rel is None else list(rel)):  # a numpy array or Series of ids reads as its items
            none.append(qid)
        elif outside := [c for c in rel if c not in known]:
            unknown.append(f"{qid}: {_some(map(repr, outside))}")
    if malformed:
        n = len(malformed)
        found.append(f"data.relevant: the relevant candidates of {n} question{'' if n == 1 else 's'} are not a set "
                     f"of ids ({'; '.join(malformed[:_SHOWN])}{'; ...' if n > _SHOWN else ''}): give each question "
                     "a set of candidate ids, e.g. {'en:0'}")  # fmt: skip
    if none:
        found.append(f"{_counted(len(none), 'question')} no relevant candidate in data.relevant ({_some(none)}): "
                     "each question needs the id(s) of its answer among data.candidates; add them or drop those "
                     "questions")  # fmt: skip
    if unknown:
        found.append(f"{_counted(len(unknown), 'question')} a relevant candidate that is not among data.candidates "
                     f"({'; '.join(unknown[:_SHOWN])}{'; ...' if len(unknown) > _SHOWN else ''}): add those "
                     "candidates, or correct the ids in data.relevant")  # fmt: skip
    return found
