"""HybridBatches: the drop-in for anyone's dataset in the plain sentence-transformers trainer (no LAReQA tables)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from datasets import Dataset, DatasetDict
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hybridir_utils.sampling.batches import HybridBatches
from hybridir_utils.sampling.sampler import HybridBatchSampler, SamplerConfigError


@pytest.fixture
def user_pairs() -> pd.DataFrame:
    """A user's table: anchor / positive / negative texts, their languages and a parallel-group id, 12 groups in
    en, de and fr (every language pair); each hard negative is the next group's positive (mined negatives often
    are another pair's positive)."""
    langs = ("en", "de", "fr")
    rows = [{"anchor": f"q{g}-{x}", "positive": f"p{g}-{y}", "negative": f"p{(g + 1) % 12}-{y}", "anchor_lang": x,
             "positive_lang": y, "id": g} for g in range(12) for x in langs for y in langs]  # fmt: skip
    return pd.DataFrame(rows)


def _batches(hb: HybridBatches, n: int = 30, **kw):
    sampler = hb.batch_sampler(hb.train_dataset, batch_size=4, drop_last=False, seed=0, **kw)
    return sampler, [b for b, _ in zip(sampler, range(n), strict=False)]


def test_only_the_texts_reach_the_trainer_and_batches_follow_the_metadata(user_pairs):
    hb = HybridBatches(Dataset.from_pandas(user_pairs), query_lang_column="anchor_lang",
                       passage_lang_column="positive_lang", group_column="id", alpha=0.5)  # fmt: skip
    assert hb.train_dataset.column_names == ["anchor", "positive", "negative"]  # in order, metadata kept out
    sampler, batches = _batches(hb)
    table = hb.pairs
    kinds = set()
    for batch in batches:
        rows = table.iloc[batch]
        mono = (rows.anchor_lang == rows.positive_lang).all() and rows.anchor_lang.nunique() == 1
        assert mono or (rows.anchor_lang != rows.positive_lang).all()  # mono in one language, or all cross
        assert rows["id"].is_unique  # one pair per parallel group: no translation of an answer as a negative
        kinds.add(mono)
    assert kinds == {True, False} and isinstance(sampler, HybridBatchSampler)


def test_without_group_ids_each_row_is_its_own_group_and_positives_never_repeat(user_pairs):
    hb = HybridBatches(user_pairs.drop(columns="id"), query_lang_column="anchor_lang",
                       passage_lang_column="positive_lang", group_column=None, preset="x-y")  # fmt: skip
    assert hb.pairs["group"].is_unique
    _, batches = _batches(hb)
    assert all(hb.pairs.iloc[b].passage.is_unique and hb.pairs.iloc[b]["query"].is_unique for b in batches)


def test_no_declared_negative_is_a_batch_mates_positive_or_repeats(user_pairs):
    hb = HybridBatches(user_pairs, query_lang_column="anchor_lang", passage_lang_column="positive_lang",
                       group_column="id", negative_columns=["negative"], alpha=1.0)  # fmt: skip
    _, batches = _batches(hb)
    for b in batches:
        rows = hb.pairs.iloc[b]
        assert rows.negative.is_unique and not set(rows.negative) & set(rows.passage)  # no positive as a negative
    with pytest.raises(SamplerConfigError, match=r"negative_columns \['anchor'\] must be text columns after"):
        HybridBatches(user_pairs, query_lang_column="anchor_lang", passage_lang_column="positive_lang",
                      group_column="id", negative_columns=["anchor"])  # fmt: skip


def test_an_eval_split_gets_the_stated_fallback_not_an_error(user_pairs):
    from sentence_transformers.base.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler

    options = dict(query_lang_column="anchor_lang", passage_lang_column="positive_lang", group_column="id")
    hb = HybridBatches(user_pairs, **options)
    evaluation = Dataset.from_pandas(user_pairs[["anchor", "positive"]].head(10))
    kw = dict(batch_size=4, drop_last=False, seed=0)
    assert type(hb.batch_sampler(evaluation, **kw)) is NoDuplicatesBatchSampler
    assert type(HybridBatches(user_pairs, eval_sampler="default", **options).batch_sampler(evaluation, **kw)) is (
        DefaultBatchSampler
    )
    copy = Dataset.from_pandas(user_pairs[["anchor", "positive", "negative"]])  # the trainer may hand a copy
    assert isinstance(hb.batch_sampler(copy, **kw), HybridBatchSampler)


def test_a_dataset_dict_and_the_class_form_with_metadata_are_refused_by_name(user_pairs):
    splits = DatasetDict({"train": Dataset.from_pandas(user_pairs), "dev": Dataset.from_pandas(user_pairs)})
    with pytest.raises(SamplerConfigError, match=r"got a DatasetDict with splits \['train', 'dev'\].*concatenate"):
        HybridBatches(splits)
    with pytest.raises(SamplerConfigError, match=r"HybridBatchSampler takes one training dataset, got a DatasetDict"):
        HybridBatchSampler(splits, 4)  # both forms read datasets through one reader: same refusals
    with pytest.raises(SamplerConfigError, match=r"type list is neither a datasets.Dataset nor a pandas DataFrame"):
        HybridBatches([("q", "p")])
    with pytest.raises(
        SamplerConfigError, match=r"type dict is neither .*build one from it \(datasets.Dataset.from_dict"
    ):
        HybridBatches(user_pairs.to_dict(orient="list"))  # a dict of columns: not read as splits
    with pytest.raises(SamplerConfigError, match=r"got a dict with splits \['train'\]"):
        HybridBatches({"train": Dataset.from_pandas(user_pairs)})
    names = {"anchor": "query", "positive": "passage", "anchor_lang": "query_lang", "positive_lang": "passage_lang",
             "id": "group"}  # fmt: skip
    lareqa_style = Dataset.from_pandas(user_pairs.rename(columns=names))
    # what `batch_sampler=HybridBatchSampler` gets from the trainer: these columns would be tokenised as texts
    with pytest.raises(SamplerConfigError, match=r"\['query_lang', 'passage_lang', 'group'\] would reach the loss"):
        HybridBatchSampler(lareqa_style, 4)
    with pytest.raises(SamplerConfigError, match="two text columns"):
        HybridBatches(user_pairs[["anchor", "anchor_lang", "positive_lang", "id"]], query_lang_column="anchor_lang",
                      passage_lang_column="positive_lang", group_column="id")  # fmt: skip


def test_a_pickled_copy_carries_no_data_and_says_so(user_pairs):
    import pickle

    hb = HybridBatches(user_pairs, query_lang_column="anchor_lang", passage_lang_column="positive_lang",
                       group_column="id")  # fmt: skip
    copy = pickle.loads(pickle.dumps(hb.batch_sampler))  # what a checkpoint's training_args.bin holds
    assert len(pickle.dumps(hb.batch_sampler)) < 2_000
    with pytest.raises(
        SamplerConfigError, match=r"read back from a checkpoint.*build HybridBatches\(dataset, \.\.\.\) again"
    ):
        copy(hb.train_dataset, batch_size=4, drop_last=False)


# ------------------------------------------------------------------ a user's flawed data: refused by column and row
USER = dict(query_lang_column="anchor_lang", passage_lang_column="positive_lang", group_column="id")


def _flawed(table: pd.DataFrame, column: str, rows, value) -> pd.DataFrame:
    table = table.copy()
    table[column] = table[column].astype(object)
    for row in [rows] if isinstance(rows, int) else rows:
        table.at[row, column] = value
    return table


NO_VALUE = r"no value \(None, NaN or blank\) in 1 row \(row 5\)"


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("anchor_lang", None, rf"dataset column 'anchor_lang': {NO_VALUE}: give every row a language"),  # was a sort's
        ("id", float("nan"), rf"dataset column 'id': {NO_VALUE}: give every row a group id"),  # was a numpy IndexError
        ("anchor", None, r"dataset column 'anchor': no text \(None or NaN\) in 1 row \(row 5\)"),  # was: advised
        ("positive", float("nan"), r"dataset column 'positive': no text \(None or NaN\) in 1 row \(row 5\)"),  # an
        ("positive_lang", "  ", rf"dataset column 'positive_lang': {NO_VALUE}"),  # internal function
        ("anchor", "", r"dataset column 'anchor': an empty or blank text in 1 row \(row 5\)"),
        ("negative", " ", r"dataset column 'negative': an empty or blank text in 1 row \(row 5\)"),
        ("negative", ["n1", "n2"], r"column 'negative': a value of type list instead of a text in 1 row \(row 5\).*"
                                   r"one text per column"),
        ("anchor", 7, r"column 'anchor': a value of type int instead of a text in 1 row \(row 5\): texts must be str"),
        ("id", 1.5, r"column 'id': a value that is neither a string nor a whole number in 1 row \(row 5; e\.g\. "
                    r"1\.5\): write each group id as a string or an integer"),
        ("anchor_lang", True, r"column 'anchor_lang': a value that is neither a string nor a whole number"),
    ],
)  # fmt: skip
def test_a_flawed_value_is_refused_naming_the_column_and_the_row(user_pairs, column, value, needle):
    flawed = _flawed(user_pairs, column, 5, value)
    with pytest.raises(SamplerConfigError, match=needle) as refusal:
        HybridBatches(flawed, negative_columns=["negative"], **USER)
    assert not re.search(r"loss_dataset|pairs", str(refusal.value))  # the user's words only
    if isinstance(value, str | type(None)) or value != value:  # a 🤗 Dataset (positions) gets the same refusal
        with pytest.raises(SamplerConfigError, match=needle.replace("dataset column", "column")):
            HybridBatches(Dataset.from_pandas(flawed, preserve_index=False), negative_columns=["negative"], **USER)


def test_the_refusal_counts_the_rows_names_the_first_by_the_users_index_and_lists_every_column(user_pairs):
    flawed = _flawed(_flawed(user_pairs, "anchor_lang", [7, 3, 30, 40], None), "id", 2, "")
    flawed.index = [f"r{i}" for i in range(len(flawed))]  # the user's own labels
    with pytest.raises(SamplerConfigError) as refusal:
        HybridBatches(flawed, **USER)
    message = str(refusal.value)
    assert message.startswith("dataset has 2 problems:\n")
    assert "column 'anchor_lang': no value (None, NaN or blank) in 4 rows (index 'r3', 'r7', 'r30', ...; " \
           "positions 3, 7, 30, ...)" in message  # fmt: skip
    assert "column 'id': no value (None, NaN or blank) in 1 row (index 'r2'; position 2)" in message


def test_the_class_form_says_dataset_or_pairs_as_the_user_passed_it(user_pairs):
    names = {"anchor": "query", "positive": "passage", "anchor_lang": "query_lang", "positive_lang": "passage_lang",
             "id": "group"}  # fmt: skip
    table = _flawed(user_pairs.rename(columns=names), "query_lang", 4, None)
    with pytest.raises(SamplerConfigError, match=r"^dataset column 'query_lang': no value .* \(row 4\)"):
        HybridBatchSampler(table, 4)
    with pytest.raises(SamplerConfigError, match=r"^pairs column 'query_lang': no value .* \(row 4\)"):
        HybridBatchSampler.factory(table)(Dataset.from_pandas(table[["query", "passage"]]), batch_size=4)
    with pytest.raises(SamplerConfigError, match=r"^dataset lacks column\(s\) \['id'\]"):
        HybridBatches(user_pairs.drop(columns="id"), **USER)


def test_infeasible_requests_name_the_users_columns_and_what_to_do(user_pairs):
    """α and filters that leave nothing to draw are refused in the user's column names, not the sampler's own."""
    mono_only = user_pairs[user_pairs.anchor_lang == user_pairs.positive_lang]
    hb = HybridBatches(mono_only, **USER, preset="x-y")
    with pytest.raises(SamplerConfigError, match=r"no row has two different languages in columns "
                                                 r"\['anchor_lang', 'positive_lang'\].*set alpha=1"):  # fmt: skip
        hb.batch_sampler(hb.train_dataset, batch_size=2, drop_last=False)
    cross_only = user_pairs[user_pairs.anchor_lang != user_pairs.positive_lang]
    hb = HybridBatches(cross_only, **USER, preset="x-x-mono")
    with pytest.raises(SamplerConfigError, match=r"have no monolingual row \(both columns \['anchor_lang', "
                                                 r"'positive_lang'\]"):  # fmt: skip
        hb.batch_sampler(hb.train_dataset, batch_size=2, drop_last=False)
    hb = HybridBatches(cross_only, **USER, preset="x-y", languages=["en"])
    with pytest.raises(SamplerConfigError, match=r"no row is left .*\['anchor_lang', 'positive_lang'\]"):
        hb.batch_sampler(hb.train_dataset, batch_size=2, drop_last=False)


def test_a_metadata_column_named_like_the_texts_is_refused_with_the_rename(user_pairs):
    """The sampler's table names the two texts ``query`` and ``passage``: a group column called ``query`` would be
    overwritten by the anchors (every row its own group, silently), so it is refused with the rename to make."""
    table = user_pairs.rename(columns={"id": "query"})
    with pytest.raises(SamplerConfigError, match=r"column 'query' is passed .*rename_column\('query', 'query_id'\)"):
        HybridBatches(table, query_lang_column="anchor_lang", passage_lang_column="positive_lang",
                      group_column="query")  # fmt: skip
    renamed = table.rename(columns={"query": "query_id"})  # the advice works
    hb = HybridBatches(renamed, query_lang_column="anchor_lang", passage_lang_column="positive_lang",
                       group_column="query_id")  # fmt: skip
    assert hb.pairs["query_id"].tolist() == user_pairs["id"].astype(str).tolist()  # group ids as text
    texts = user_pairs.rename(columns={"anchor": "query", "positive": "passage"})  # texts of those names are fine
    hb = HybridBatches(texts, query_lang_column="anchor_lang", passage_lang_column="positive_lang", group_column="id")
    assert hb.pairs["query"].tolist() == user_pairs["anchor"].tolist()


def test_values_that_mean_the_same_thing_are_accepted(user_pairs):
    """Ids as ints, numpy ints, whole floats or their text are one id; categorical and ClassLabel languages count
    by their names; duplicated rows are kept (never in one batch: no text repeats)."""
    from datasets import ClassLabel

    mixed = user_pairs.astype({"id": object, "anchor_lang": "category"})
    mixed["id"] = [str(g) if i % 3 == 0 else (np.int64(g) if i % 3 == 1 else float(g)) for i, g in
                   enumerate(user_pairs["id"])]  # fmt: skip
    mixed = pd.concat([mixed, mixed.iloc[:9]], ignore_index=True)  # 9 duplicated rows
    hb = HybridBatches(mixed, **USER, alpha=0.5)
    assert hb.pairs["id"].nunique() == 12 and set(hb.pairs["anchor_lang"]) == {"en", "de", "fr"}
    for batch in _batches(hb)[1]:
        rows = hb.pairs.iloc[batch]
        assert rows["id"].is_unique and rows["query"].is_unique
    labels = ClassLabel(names=["fr", "en", "de"])  # codes in another order than the other column's texts
    coded = Dataset.from_pandas(user_pairs).cast_column("positive_lang", labels)
    hb = HybridBatches(coded, **USER, preset="x-x-mono")
    assert hb.pairs["positive_lang"].tolist() == user_pairs["positive_lang"].tolist()
    assert all(hb.pairs.iloc[b]["anchor_lang"].eq(hb.pairs.iloc[b]["positive_lang"]).all() for b in _batches(hb)[1])


# ------------------------------------------------------------------ property: generated user datasets
LANG_POOL = ("en", "de", "fr", "zh")
# (column, value): every flaw a generated dataset may carry; each one is refused (docs/drop-in.md)
FLAWS = [("anchor_lang", None), ("positive_lang", float("nan")), ("anchor_lang", ""), ("positive_lang", " "),
         ("anchor_lang", True), ("id", None), ("id", float("nan")), ("id", ""), ("id", 1.5), ("id", [3]),
         ("anchor", None), ("anchor", ""), ("anchor", 7), ("positive", float("nan")), ("positive", "  "),
         ("negative", None), ("negative", ""), ("negative", ["n1", "n2"])]  # fmt: skip


def _label_text(value):
    """The spec of what a label means, written apart from the implementation: a string, or a whole number."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    return str(int(value)) if np.isfinite(value) and float(value).is_integer() else None


def _bad_rows(table: pd.DataFrame) -> dict[str, list[int]]:
    texts = {c: [i for i, v in enumerate(table[c]) if not (isinstance(v, str) and v.strip())]
             for c in ("anchor", "positive", "negative")}  # fmt: skip
    labels = {c: [i for i, v in enumerate(table[c]) if _label_text(v) is None] for c in ("anchor_lang",
              "positive_lang", "id")}  # fmt: skip
    return {c: rows for c, rows in {**texts, **labels}.items() if rows}


@st.composite
def user_datasets(draw):
    """A user-style table: random languages and group sizes (each group in some languages, every language pair of
    them), duplicated rows, ids and languages in the types users have, sometimes their own index, and flaws."""
    langs = draw(st.lists(st.sampled_from(LANG_POOL), min_size=1, max_size=4, unique=True))
    rows = []
    for g in range(draw(st.integers(2, 10))):
        present = draw(st.lists(st.sampled_from(langs), min_size=1, max_size=len(langs), unique=True))
        rows += [{"anchor": f"q{g}-{x}", "positive": f"p{g}-{y}", "negative": f"n{g}-{y}", "anchor_lang": x,
                  "positive_lang": y, "id": g} for x in present for y in present]  # fmt: skip
    table = pd.DataFrame(rows)
    table = pd.concat([table, table.iloc[draw(st.lists(st.integers(0, len(table) - 1), max_size=4))]])
    table = table.reset_index(drop=True).astype({"id": object})
    id_kind = draw(st.sampled_from(["int", "text", "float", "mixed"]))  # mixed: 7, "7", 7.0, numpy.int64(7)
    kinds = {"int": [int], "text": [str], "float": [float], "mixed": [int, str, float, np.int64]}[id_kind]
    table["id"] = [kinds[i % len(kinds)](g) for i, g in enumerate(table["id"])]
    n_flaws = draw(st.sampled_from([0, 0, 1, 2, 3]))  # clean about as often as flawed
    for (column, value), row in draw(st.lists(st.tuples(st.sampled_from(FLAWS), st.integers(0, len(table) - 1)),
                                              min_size=n_flaws, max_size=n_flaws)):  # fmt: skip
        table[column] = table[column].astype(object)
        table.at[row, column] = value
    if draw(st.booleans()) and "anchor_lang" not in _bad_rows(table):
        table["anchor_lang"] = table["anchor_lang"].astype("category")
    if draw(st.booleans()):
        table.index = [f"r{i}" for i in range(len(table))]
    return table


def _check_refusal(message: str, table: pd.DataFrame, bad: dict[str, list[int]]) -> None:
    """Every flawed column named, each with its first flawed row (by the user's index label or position)."""
    for column, rows in bad.items():
        lines = [line for line in message.splitlines() if f"column {column!r}" in line]
        first = rows[0] if isinstance(table.index, pd.RangeIndex) else repr(table.index[rows[0]])
        named = rf"(rows? |index ){re.escape(str(first))}(?!\d)"
        assert any(re.search(named, line) for line in lines), (column, message)


def _must_refuse_as_infeasible(table: pd.DataFrame, alpha: float, batch_size: int) -> bool:
    """Whether a clean table cannot fill a batch: here every group's texts are its own, so a pool fills a batch
    exactly when it holds batch_size groups (a mono pool per language when alpha > 0, the cross pool when < 1)."""
    ids, qlang = table["id"].map(_label_text), table["anchor_lang"].astype(str)
    plang = table["positive_lang"].astype(str)
    mono = qlang == plang
    pools = [ids[mono & (qlang == lang)] for lang in set(qlang) | set(plang)] if alpha > 0 else []
    pools += [ids[~mono]] if alpha < 1 else []
    return min(pool.nunique() for pool in pools) < batch_size


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(table=user_datasets(), batch_size=st.integers(1, 4), alpha=st.sampled_from([0.0, 0.5, 1.0]),
       declare_negative=st.booleans(), as_dataset=st.booleans(), seed=st.integers(0, 2**16))  # fmt: skip
def test_a_generated_user_dataset_is_refused_by_column_or_batched_by_every_rule(
    table, batch_size, alpha, declare_negative, as_dataset, seed
):
    bad = _bad_rows(table)
    dataset = table
    if as_dataset and isinstance(table.index, pd.RangeIndex):  # a 🤗 Dataset, where arrow can hold the values
        try:
            dataset = Dataset.from_pandas(table, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            dataset = table
    options = dict(negative_columns=["negative"] if declare_negative else [], alpha=alpha, steps_per_epoch=6, **USER)
    try:
        hb = HybridBatches(dataset, **options)
        sampler = hb.batch_sampler(hb.train_dataset, batch_size=batch_size, drop_last=False, seed=seed)
    except SamplerConfigError as refusal:
        message = str(refusal)
        # the user's words: no internal function, table or column name (the user's columns are anchor_lang, id ...)
        assert not re.search(r"loss_dataset|pairs table|pairs column|pairs\[|query_lang|passage_lang|'group'", message)
        event("refused: flawed rows" if bad else "refused: infeasible")
        if bad:
            return _check_refusal(message, table, bad)
        assert re.search(r"cannot be met|needs cross-lingual batches|needs monolingual batches", message), message
        assert _must_refuse_as_infeasible(table, alpha, batch_size), message
        return
    event("batched")
    assert not bad, f"accepted a dataset with flawed rows {bad}"
    assert not _must_refuse_as_infeasible(table, alpha, batch_size)
    ids = table["id"].map(_label_text).to_numpy()
    qlang, plang = table["anchor_lang"].astype(str).to_numpy(), table["positive_lang"].astype(str).to_numpy()
    batches = list(sampler)
    assert len(batches) == 6
    for batch in batches:
        assert len(batch) == batch_size == len(set(batch))
        mono = qlang[batch] == plang[batch]
        assert (mono.all() and len(set(qlang[batch])) == 1) or not mono.any()  # one language, or every pair cross
        assert len(set(ids[batch])) == batch_size  # one row per group: 7 and "7" are one group
        for column in ("anchor", "positive", "negative"):
            assert table[column].iloc[batch].is_unique  # no repeated text (duplicated rows never meet)
        assert hb.train_dataset[batch]["anchor"] == table["anchor"].iloc[batch].tolist()  # indices are the user's rows
