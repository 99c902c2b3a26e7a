"""The checks behind both sampler forms: labels compared by what they mean, rows named as the user names them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from datasets import ClassLabel, Dataset

from hybridir_utils.errors import SamplerConfigError
from hybridir_utils.sampling.validation import check_same_rows, checked_table, rows_table

LABELS = {"lang": "language", "group": "group id"}


def _table(**columns) -> pd.DataFrame:
    base = {"query": ["q0", "q1", "q2", "q3"], "passage": ["p0", "p1", "p2", "p3"], "lang": ["en"] * 4,
            "group": [0, 1, 2, 3]}  # fmt: skip
    return pd.DataFrame({**base, **columns})


def test_labels_become_their_text_whatever_type_holds_them():
    group = pd.Series([7, np.int64(7), 7.0, "7"], dtype=object)
    lang = pd.Categorical(["en", "de", "en", "de"])
    out = checked_table(_table(group=group, lang=lang), ["query", "passage"], LABELS)
    assert out["group"].tolist() == ["7"] * 4 and out["lang"].tolist() == ["en", "de", "en", "de"]
    assert out["query"].tolist() == ["q0", "q1", "q2", "q3"]  # texts are checked, never rewritten


def test_class_label_codes_are_read_as_their_names():
    data = Dataset.from_dict({"lang": [0, 1, 1]}).cast_column("lang", ClassLabel(names=["th", "en"]))
    assert rows_table(data, "HybridBatches", "")["lang"].astype(str).tolist() == ["th", "en", "en"]


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ([None, 1, np.nan, 3], r"no value \(None, NaN or blank\) in 2 rows \(rows 0, 2\)"),
        ([0, "", " ", 3], r"no value \(None, NaN or blank\) in 2 rows \(rows 1, 2\)"),
        ([0, 1.5, float("inf"), True], r"a value that is neither a string nor a whole number in 3 rows \(rows 1, 2, "
                                       r"3; e\.g\. 1\.5\)"),
    ],
)  # fmt: skip
def test_a_missing_blank_or_odd_label_is_counted_and_its_rows_named(values, needle):
    with pytest.raises(SamplerConfigError, match=rf"^dataset column 'group': {needle}: "):
        checked_table(_table(group=pd.Series(values, dtype=object)), ["query", "passage"], LABELS)


def test_more_than_three_rows_are_counted_and_the_first_three_named_by_the_users_labels():
    table = pd.DataFrame({"query": [None] * 5, "passage": ["p"] * 5, "lang": ["en"] * 5, "group": range(5)})
    with pytest.raises(SamplerConfigError, match=r"in 5 rows \(index 'e', 'f', 'g', \.\.\.; positions 0, 1, 2, "):
        checked_table(table, ["query", "passage"], LABELS, "dataset", pd.Index(list("efghi")))
    with pytest.raises(SamplerConfigError, match=r"in 5 rows \(rows 0, 1, 2, \.\.\.\)"):
        checked_table(table, ["query", "passage"], LABELS, "dataset", pd.RangeIndex(5))


def test_every_flawed_column_is_listed_in_one_error_under_the_callers_name():
    table = _table(query=["q0", None, "q2", 5], lang=["en", "en", None, "en"])
    with pytest.raises(SamplerConfigError) as refusal:
        checked_table(table, ["query", "passage"], LABELS, "pairs")
    assert str(refusal.value).splitlines() == [
        "pairs has 3 problems:",
        "  column 'query': no text (None or NaN) in 1 row (row 1): drop those rows or give them a text",
        "  column 'query': a value of type int instead of a text in 1 row (row 3): texts must be strings",
        "  column 'lang': no value (None, NaN or blank) in 1 row (row 2): give every row a language, or drop those "
        "rows",
    ]


def test_a_dataset_out_of_step_with_pairs_names_the_first_row_that_differs():
    pairs = _table()
    dataset = Dataset.from_dict({"query": ["q0", "q1", "q3", "q2"], "passage": pairs["passage"].tolist()})
    with pytest.raises(SamplerConfigError, match=r"dataset column 'query' differs from pairs\['query'\] in 2 rows "
                       r"\(rows 2, 3\): the dataset the trainer iterates must hold the rows of pairs in the same "
                       r"order") as refusal:  # fmt: skip
        check_same_rows(dataset, pairs, ["query", "passage"])
    assert "loss_dataset" not in str(refusal.value)  # no function the user has not called
    check_same_rows(Dataset.from_pandas(pairs[["query", "passage"]]), pairs, ["query", "passage"])
