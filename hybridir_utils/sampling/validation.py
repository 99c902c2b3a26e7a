"""A user's training dataset, read and checked before any batch is drawn: every flaw refused by column and row.

Unchecked, a missing language or group id failed deep inside the sampler (a sort comparing a float with a str, a
negative index from a NaN id), with errors about numpy rather than about the data. So both sampler forms read a
dataset here (:func:`rows_table`) and check the columns they read (:func:`checked_table`); each refusal names the
column, what is wrong, how many rows and the first of them (the user's index labels, or positions in a 🤗 Dataset),
and what to do, every flawed column at once. The rules (listed for users in docs/drop-in.md):

* **texts** (anchor, positive, hard negatives): strings with a non-blank character. Anything else is refused: the
  tokenizer stops mid-training on a missing text, and an empty one is encoded as if it were one.
* **labels** (languages, group ids, a steering domain, unique columns) are compared by what they mean, as text:
  strings as they are, whole numbers as integers (``7``, ``7.0``, ``numpy.int64(7)`` and ``"7"`` are one group;
  otherwise translations would meet as negatives), categorical values and 🤗 ``ClassLabel`` codes by their names.
  Missing or blank values, and values of any other type, are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hybridir_utils.errors import SamplerConfigError

_SHOWN = 3  # offending rows a message names


def rows_table(dataset: Any, owner: str, otherwise: str) -> pd.DataFrame:
    """A training dataset (DataFrame or 🤗 Dataset) as one table indexed 0..n-1: the one reader of both sampler forms,
    so they refuse the same inputs (a ``DatasetDict``: one sampler must see every row of the dataset it indexes).
    ``ClassLabel`` columns become their names, so languages coded in different orders still compare."""
    if isinstance(dataset, pd.DataFrame):
        return dataset.reset_index(drop=True)
    if isinstance(dataset, Mapping) and not all(hasattr(v, "column_names") for v in dataset.values()):  # columns
        raise SamplerConfigError(
            f"dataset of type {type(dataset).__name__} is neither a datasets.Dataset nor a pandas "
            "DataFrame: build one from it (datasets.Dataset.from_dict or pandas.DataFrame)"
        )
    if isinstance(dataset, Mapping) or type(dataset).__name__ in ("DatasetDict", "IterableDatasetDict"):
        splits = list(dataset.keys()) if hasattr(dataset, "keys") else []
        raise SamplerConfigError(
            f"{owner} takes one training dataset, got a {type(dataset).__name__} with splits {splits}: pass "
            "the training split and give evaluation splits to the trainer's eval_dataset; several training "
            "splits must be concatenated first (datasets.concatenate_datasets), so one sampler sees every row"
        )
    if hasattr(dataset, "to_pandas") and hasattr(dataset, "column_names"):
        table = dataset.to_pandas()
        for name, feature in dict(getattr(dataset, "features", None) or {}).items():
            if type(feature).__name__ == "ClassLabel" and name in table.columns:
                codes = table[name].fillna(-1).astype("int64")  # -1: ClassLabel's "no label"
                table[name] = pd.Categorical.from_codes(codes, categories=list(feature.names))
        return table
    raise SamplerConfigError(f"dataset of type {type(dataset).__name__} is neither a datasets.Dataset nor a pandas "
                             f"DataFrame: {otherwise}")  # fmt: skip


def user_index(dataset: Any) -> pd.Index | None:
    """How the user names the rows: a DataFrame's index labels; None (positions) for a 🤗 Dataset."""
    return dataset.index if isinstance(dataset, pd.DataFrame) else None


def check_columns(table: pd.DataFrame, needed: Sequence[str], what: str = "dataset") -> None:
    """Name every missing column at once, before anything reads one."""
    missing = [c for c in dict.fromkeys(needed) if c not in table.columns]
    if missing:
        raise SamplerConfigError(f"{what} lacks column(s) {missing}; it has {list(table.columns)}")
    if table.empty:
        raise SamplerConfigError(f"{what} is empty (no rows)")


def checked_table(
    table: pd.DataFrame,
    texts: Sequence[str],
    labels: Mapping[str, str],
    what: str = "dataset",
    index: pd.Index | None = None,
) -> pd.DataFrame:
    """``table`` (indexed 0..n-1) once its ``texts`` and ``labels`` ({column: what one value is, e.g. "language"})
    pass every check, with the label columns as their text (module docstring); else one error naming every flaw.
    ``what`` is the argument's name in the message, ``index`` the user's row labels (None: positions)."""
    check_columns(table, [*texts, *labels], what)
    problems, canonical = [], {}
    for column in dict.fromkeys(texts):
        problems += [f"column {column!r}: {p}" for p in _text_problems(table[column], index)]
    for column, noun in labels.items():
        canonical[column], found = _labels(table[column], noun, index)
        problems += [f"column {column!r}: {p}" for p in found]
    if len(problems) == 1:
        raise SamplerConfigError(f"{what} {problems[0]}")
    if problems:
        raise SamplerConfigError(f"{what} has {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))
    return table.assign(**canonical)


def check_same_rows(dataset: Any, pairs: pd.DataFrame, columns: Sequence[str]) -> None:
    """The dataset the trainer iterates must hold the rows of ``pairs`` in the same order: the sampler's indices
    point into it. Compares its first two columns with ``pairs``' text ``columns`` (query, passage)."""
    if len(dataset) != len(pairs):
        raise SamplerConfigError(
            f"dataset has {len(dataset)} rows but pairs has {len(pairs)}: the dataset the trainer iterates must hold "
            "the rows of pairs in the same order (make both from one table: the dataset from its text columns)"
        )
    names = list(getattr(dataset, "column_names", None) or getattr(dataset, "columns", []))
    for name, expected in zip(names, columns, strict=False):
        got, want = np.asarray(list(dataset[name]), dtype=object), pairs[expected].to_numpy(dtype=object)
        differ = np.flatnonzero(got != want)
        if len(differ):
            raise SamplerConfigError(
                f"dataset column {name!r} differs from pairs[{expected!r}] in {_count(differ)} "
                f"({_where(differ, None)}): the dataset the trainer iterates must hold the rows of pairs in the same "
                f"order (make both from one table: the dataset from its text columns)"
            )


def _values(series: pd.Series) -> np.ndarray:
    """The column as Python-level objects (a categorical's values, not its codes)."""
    return series.to_numpy(dtype=object)


def _text_problems(series: pd.Series, index: pd.Index | None) -> list[str]:
    values = _values(series)
    missing = pd.isna(values)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = ~missing
    else:
        text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    other = ~missing & ~text
    blank = np.zeros(len(values), dtype=bool)
    blank[text] = [not v.strip() for v in values[text]]
    found = []
    if missing.any():
        found.append(f"no text (None or NaN) in {_count(missing)} ({_where(missing, index)}): drop those rows or "
                     f"give them a text")  # fmt: skip
    if other.any():
        kinds = sorted({type(v).__name__ for v in values[other]})
        hint = " (the loss takes one text per column: spread a list over several columns)" if "list" in kinds else ""
        found.append(f"a value of type {'/'.join(kinds)} instead of a text in {_count(other)} "
                     f"({_where(other, index)}): texts must be strings{hint}")  # fmt: skip
    if blank.any():
        found.append(f"an empty or blank text in {_count(blank)} ({_where(blank, index)}): the loss would encode it "
                     "as a text; drop those rows or give them a text")  # fmt: skip
    return found


def _label(value: Any) -> str | None:
    """A label's text (module docstring), None when the value is no label: neither a string nor a whole number."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return None


def _labels(series: pd.Series, noun: str, index: pd.Index | None) -> tuple[np.ndarray, list[str]]:
    """(the column's labels as text, its problems)."""
    values = _values(series)
    missing = pd.isna(values)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # the usual case: nothing to convert
        labels = values.copy()
    else:
        labels = np.array([None if m else _label(v) for v, m in zip(values, missing, strict=True)], dtype=object)
    other = ~missing & np.fromiter((v is None for v in labels), dtype=bool, count=len(labels))
    usable = ~missing & ~other
    missing[usable] = [not v.strip() for v in labels[usable]]  # a blank label is a missing one
    found = []
    if missing.any():
        found.append(f"no value (None, NaN or blank) in {_count(missing)} ({_where(missing, index)}): give every "
                     f"row a {noun}, or drop those rows")  # fmt: skip
    if other.any():
        example = values[other][0]
        example = example.item() if isinstance(example, np.generic) else example
        found.append(f"a value that is neither a string nor a whole number in {_count(other)} ({_where(other, index)}"
                     f"; e.g. {example!r}): write each {noun} as a string or an integer")  # fmt: skip
    return labels, found


def _count(rows: np.ndarray) -> str:
    n = int(rows.sum()) if rows.dtype == bool else len(rows)
    return f"{n} row{'' if n == 1 else 's'}"


def _where(rows: np.ndarray, index: pd.Index | None) -> str:
    """The first offending rows, by the user's labels when they are not plain positions."""
    rows = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows)
    shown, more = rows[:_SHOWN].tolist(), ", ..." if len(rows) > _SHOWN else ""
    positions = ", ".join(map(str, shown)) + more
    if index is None or index.equals(pd.RangeIndex(len(index))):
        return f"row{'s' if len(rows) > 1 else ''} {positions}"
    labels = ", ".join(repr(label) for label in index[shown].tolist()) + more
    return f"index {labels}; position{'s' if len(rows) > 1 else ''} {positions}"
