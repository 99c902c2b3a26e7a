"""HybridBatches: the drop-in for anyone's dataset in the plain sentence-transformers trainer (no LAReQA tables)."""

from __future__ import annotations

import pandas as pd
import pytest
from datasets import Dataset, DatasetDict

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
        mono = (rows.query_lang == rows.passage_lang).all() and rows.query_lang.nunique() == 1
        assert mono or (rows.query_lang != rows.passage_lang).all()  # mono in one language, or all cross
        assert rows["group"].is_unique  # one pair per parallel group: no translation of an answer as a negative
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
    with pytest.raises(SamplerConfigError, match="unpickled without its data"):
        copy(hb.train_dataset, batch_size=4, drop_last=False)
