"""WiSE-FT: exact weight interpolation, a slim save that reloads to the same model, and λ chosen by a fixed rule."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from hybridir_utils import errors
from hybridir_utils.models import delta, loading
from hybridir_utils.training import wiseft
from hybridir_utils.training.trainer import transformer_backbone

TEXTS = ["the cat sat on the mat", "a dog ran", "cat and dog", "the mat"]
WORDS = "the a cat dog sat ran on mat and".split()


def _tiny_folder(folder, seed: int, hidden: int = 16, word_embeddings=None):
    """A random 2-layer BERT sentence-transformer (mean pooling) with a 14-token WordPiece vocabulary, saved."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(seed)
    bert = BertModel(BertConfig(vocab_size=14, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32, max_position_embeddings=64))  # fmt: skip
    if word_embeddings is not None:  # frozen in training: the fine-tuned model shares the base's matrix
        bert.get_input_embeddings().weight.data.copy_(word_embeddings)
    bert.save_pretrained(folder)
    model = SentenceTransformer(modules=[Transformer(str(folder), max_seq_length=32), Pooling(hidden, "mean")])
    model.save_pretrained(str(folder))
    return model


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(base folder, fine-tuned folder saved slim against it like a training run, base model, fine-tuned model)."""
    root = tmp_path_factory.mktemp("wiseft")
    base = _tiny_folder(root / "base", seed=0)
    words = transformer_backbone(base).get_input_embeddings().weight.detach().clone()
    finetuned = _tiny_folder(root / "finetuned", seed=1, word_embeddings=words)
    finetuned.max_seq_length = 24  # the trained arm's own setting, kept by interpolate
    finetuned.save_pretrained(str(root / "finetuned"))
    delta.slim(root / "finetuned", str(root / "base"), loading.load_base)
    assert delta.is_slim(root / "finetuned")
    return root / "base", root / "finetuned", base, finetuned


def _bits_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].view(-1).view(torch.uint8), b[k].view(-1).view(torch.uint8))
                                        for k in a)  # fmt: skip


def test_interpolation_ends_are_bitwise_the_models_and_the_middle_is_the_mean(pair):
    base, finetuned = (copy.deepcopy(m) for m in pair[2:])
    with torch.no_grad():  # signed zeros: 1·(−0) + 0·x is +0, so only exact ends keep the bits
        transformer_backbone(base).pooler.dense.bias[0] = -0.0
        transformer_backbone(finetuned).pooler.dense.bias[1] = -0.0
    b, f = base.state_dict(), finetuned.state_dict()
    assert _bits_equal(wiseft.interpolate(base, finetuned, 0).state_dict(), b)
    assert _bits_equal(wiseft.interpolate(base, finetuned, 1.0).state_dict(), f)
    half = wiseft.interpolate(base, finetuned, 0.5).state_dict()
    moved = [k for k in f if f[k].is_floating_point() and not torch.equal(b[k], f[k])]
    assert len(moved) > 10
    assert all(torch.allclose(half[k], (b[k] + f[k]) / 2) for k in f if f[k].is_floating_point())
    assert not any(torch.equal(half[k], f[k]) or torch.equal(half[k], b[k]) for k in moved)
    quarter = wiseft.interpolate(base, finetuned, 0.25).state_dict()  # (1 − λ)·base + λ·fine-tuned, not reversed
    assert all(torch.allclose(quarter[k], 0.75 * b[k] + 0.25 * f[k]) for k in moved)
    words = next(k for k in f if k.endswith("word_embeddings.weight"))  # equal in both: untouched, bitwise the base's
    assert words not in moved
    assert _bits_equal({words: wiseft.interpolate(base, finetuned, 0.3).state_dict()[words]}, {words: b[words]})


def test_interpolation_keeps_the_fine_tuned_settings_and_leaves_both_models_alone(pair):
    _, _, base, finetuned = pair
    before = {k: v.clone() for k, v in finetuned.state_dict().items()}
    mixed = wiseft.interpolate(base, finetuned, 0.3)
    assert mixed is not finetuned and mixed.max_seq_length == 24 != base.max_seq_length
    assert _bits_equal(finetuned.state_dict(), before)
    assert loading.fingerprint(wiseft.interpolate(base, finetuned, 1)) == loading.fingerprint(finetuned)


def test_lambda_zero_encodes_as_the_base(pair):
    _, _, base, finetuned = pair
    got = wiseft.interpolate(base, finetuned, 0).encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_array_equal(got, base.encode(TEXTS, convert_to_numpy=True))  # texts fit both lengths


def test_interpolation_refuses_other_architectures_and_lambdas_outside_0_1(pair, tmp_path):
    _, _, base, finetuned = pair
    wider = _tiny_folder(tmp_path / "wider", seed=2, hidden=32)
    with pytest.raises(errors.WiseFTError, match=r"^.*: 0\.\w+\.embeddings\.word_embeddings\.weight is .*\(14, 16\)"):
        wiseft.interpolate(base, wider, 0.5)
    for lam in (-0.1, 1.5, float("nan"), "half"):
        with pytest.raises(errors.WiseFTError, match="lam must"):
            wiseft.interpolate(base, finetuned, lam)


def test_saved_interpolation_is_slim_reloads_to_the_same_embeddings_and_is_reused(pair, tmp_path):
    base_dir, ft_dir, base, _ = pair
    out = wiseft.save_interpolated(str(base_dir), ft_dir, 0.25, tmp_path / "wise")
    assert json.loads((out / wiseft.MANIFEST).read_text())["lambda"] == 0.25
    assert "embeddings.word_embeddings.weight" in json.loads((out / delta.MANIFEST).read_text())["tensors"]
    in_memory = wiseft.interpolate(base, loading.load_encoder(str(ft_dir)), 0.25)
    loaded = loading.load_encoder(str(out))
    assert _bits_equal(loaded.state_dict(), in_memory.state_dict()) and loaded.max_seq_length == 24
    np.testing.assert_array_equal(loaded.encode(TEXTS), in_memory.encode(TEXTS))
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert wiseft.save_interpolated(str(base_dir), ft_dir, 0.25, tmp_path / "wise") == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp  # same record: reused, not rewritten
    wiseft.save_interpolated(str(base_dir), ft_dir, 0.5, tmp_path / "wise")
    assert json.loads((out / wiseft.MANIFEST).read_text())["lambda"] == 0.5  # another λ: rewritten


def _per_query(value: float, n: int = 12) -> pd.DataFrame:
    """A dev per-query table: mono and cross in en/de, ``n`` groups, AP ``value`` (+0.01 per group)."""
    rows = [dict(qid=f"{x}:g{g}", query_lang=x, pool_lang=y, setting="mono" if x == y else "cross",
                 ap=min(1.0, value + 0.01 * g), group=f"g{g}") for g in range(n) for x in ("en", "de")
            for y in ("en", "de")]  # fmt: skip
    return pd.DataFrame(rows)


def test_lambda_sweep_loads_each_model_once_and_scores_the_base_once(pair, tmp_path, monkeypatch):
    base_dir, ft_dir, _, _ = pair
    loaded, scored = [], []

    def load(name, **kwargs):
        loaded.append(str(name))
        return loading.load_encoder(name, **kwargs)

    def per_query(encoder, dev, out_dir, batch_size=16, max_seq_length=None, use_cache=False):  # weight summary
        assert max_seq_length == 512 and use_cache  # every λ (and the base) at the one cut-off; cached by weights
        scored.append(encoder)
        w = float(transformer_backbone(encoder).encoder.layer[0].output.dense.weight.detach().sum())
        return _per_query(w / 100), {}

    # what wiseft itself loads (a slim model's restore reads its base inside models, not counted here)
    monkeypatch.setattr(wiseft, "loading", SimpleNamespace(load_encoder=load, load_base=loading.load_base))
    monkeypatch.setattr(wiseft.recipe, "dev_per_query", per_query)
    table = wiseft.lambda_sweep(str(base_dir), [ft_dir, ft_dir], None, [1, 0.5], tmp_path / "sweep", max_seq_length=512)
    assert loaded == [str(base_dir), str(ft_dir), str(ft_dir)] and len(scored) == 1 + 2 * 2
    assert table.columns.tolist() == wiseft.LONG_COLUMNS
    assert sorted(table.lam.unique()) == [0, 0.5, 1] and len(table) == 2 * 3 * 48
    ends = table[table["query"] == "en:g0@en"].groupby("lam").ap.first()
    assert ends[0.5] == pytest.approx((ends[0] + ends[1]) / 2, rel=1e-4)  # the layer's weights are interpolated
    assert pd.read_parquet(tmp_path / "sweep" / "lambda_sweep.parquet").equals(table)


def _sweep(per_lambda: dict[float, list[tuple[float, float]]]) -> pd.DataFrame:
    """{λ: [(mono AP, cross AP) offset of each run]} as a long λ-sweep table; the base (λ 0) sits at 0.7 / 0.4."""
    frames = []
    for lam, runs in {0: [(0.0, 0.0)] * len(next(iter(per_lambda.values()))), **per_lambda}.items():
        for r, (mono, cross) in enumerate(runs):
            pq = _per_query(0.0)
            pq["ap"] += np.where(pq.setting == "mono", 0.7 + mono, 0.4 + cross)
            frames.append(wiseft._long(pq, f"run{r}", lam))
    return pd.concat(frames, ignore_index=True)


def test_the_curve_pairs_each_lambda_with_the_base_and_widens_when_runs_disagree():
    curve = wiseft.curve(_sweep({0.5: [(-0.01, 0.05), (-0.01, 0.05)], 1: [(-0.05, 0.02), (0.05, 0.08)]}), n_boot=500)
    row = curve.set_index("lam")
    assert list(row.index) == [0, 0.5, 1] and (curve.part == "dev").all() and (curve.runs == 2).all()
    assert row.loc[0.5, "mono_delta"] == pytest.approx(-0.01) and row.loc[0.5, "cross_delta"] == pytest.approx(0.05)
    assert row.loc[0.5, "mono_hi"] - row.loc[0.5, "mono_lo"] == pytest.approx(0.0, abs=1e-9)  # runs agree: no spread
    assert row.loc[1, "mono_delta"] == pytest.approx(0.0) and row.loc[1, "mono_hi"] - row.loc[1, "mono_lo"] > 0.1
    assert row.loc[0, ["mono_delta", "mono_lo", "mono_hi"]].tolist() == [0, 0, 0]
    assert row.loc[0.5, "dev_mono"] == pytest.approx(row.loc[0, "dev_mono"] - 0.01)


def test_lambda_qualifies_by_the_paired_interval_not_by_its_mean():
    """λ 1's mean mono is the base's (its runs at -0.05 and +0.05), but its interval reaches below the margin, so
    it does not qualify even with the best cross; λ 0.5 loses 0.005 in both runs: shown within the margin."""
    curve = wiseft.curve(_sweep({0.5: [(-0.005, 0.03), (-0.005, 0.03)], 1: [(-0.05, 0.10), (0.05, 0.10)],
                                 0.8: [(-0.02, 0.06), (-0.02, 0.06)]}), n_boot=500)  # fmt: skip
    chosen = wiseft.choose_lambda(curve, mono_margin=0.01)
    assert chosen["lam"] == 0.5 and chosen["qualifying"] == [0, 0.5] and chosen["n_models"] == 2
    assert chosen["dev_cross"] == pytest.approx(chosen["base_dev_cross"] + 0.03)
    assert wiseft.choose_lambda(curve, mono_margin=0.03)["lam"] == 0.8  # a wider margin admits 0.8, not λ 1
    marked = wiseft.marked(curve, chosen, 0.01, dev="the dev")
    assert marked.qualifies.tolist() == [True, True, False, False] and marked.chosen.tolist() == [
        False,
        True,
        False,
        False,
    ]
    assert set(marked.dev) == {"the dev"}


def test_ties_go_to_the_smaller_lambda_and_nothing_better_keeps_the_base():
    tie = wiseft.curve(_sweep({0.3: [(0.0, 0.02)] * 2, 0.6: [(0.0, 0.02)] * 2}), n_boot=200)
    assert wiseft.choose_lambda(tie)["lam"] == 0.3
    worse = wiseft.curve(_sweep({0.5: [(-0.05, 0.02)] * 2, 1: [(-0.1, 0.05)] * 2}), n_boot=200)
    assert wiseft.choose_lambda(worse)["lam"] == 0.0 and wiseft.choose_lambda(worse)["qualifying"] == [0.0]


def test_the_test_never_chooses_lambda():
    dev = wiseft.curve(_sweep({0.5: [(0.0, 0.02)] * 2}), n_boot=100)
    test = wiseft.curve(_sweep({0.5: [(0.0, 0.09)] * 2}), part="test", n_boot=100)
    assert "test_mono" in test and "dev_mono" not in test
    with pytest.raises(errors.WiseFTError, match="dev rows only"):
        wiseft.choose_lambda(
            pd.concat([dev, test.rename(columns={"test_mono": "dev_mono", "test_cross": "dev_cross"})])
        )
    with pytest.raises(errors.WiseFTError, match="dev rows only"):
        wiseft.choose_lambda(test.rename(columns={"test_mono": "dev_mono", "test_cross": "dev_cross"}))


@pytest.mark.parametrize(
    "table, match",
    [
        (_sweep({0.5: [(0, 0)]}).query("lam != 0"), r"λ = 0 rows"),
        (_sweep({0.5: [(0, 0)]}).drop(columns="group"), "group"),
        (_sweep({0.5: [(0, 0)] * 2}).query("not (lam == 0.5 and model_dir == 'run1')"), "each λ for each of its 2"),
    ],
)
def test_the_curve_rejects_malformed_sweeps(table, match):
    with pytest.raises(errors.WiseFTError, match=match):
        wiseft.curve(table, n_boot=10)


def _committed(tmp_path, monkeypatch, lambdas=(0.5, 1.0)):
    curve = wiseft.curve(_sweep({lam: [(-0.005, 0.03 * lam)] * 3 for lam in lambdas}), n_boot=100)
    chosen = wiseft.choose_lambda(curve)
    folder = tmp_path / "results" / "cpu"
    folder.mkdir(parents=True)
    wiseft.marked(curve, chosen, 0.01, dev="xquad-r zero-shot dev").to_csv(folder / "wiseft.csv", index=False)
    pd.DataFrame({"system": "hybrid/general", "label": [f"hybrid/general/s{k}" for k in range(3)], "seed": range(3),
                  "groups": 10, "pairs": 40, "batch_size": 16, "steps": 40,
                  "train_loss": [0.41, 0.42, 0.43]}).to_csv(folder / "training.csv", index=False)  # fmt: skip
    monkeypatch.setattr(wiseft.paths, "results_dir", lambda name: tmp_path / "results" / name)
    return folder, chosen


def test_a_committed_curve_is_reused_only_for_the_same_grid_dev_and_runs(tmp_path, monkeypatch):
    folder, chosen = _committed(tmp_path, monkeypatch)
    table, again = wiseft.reuse("cpu", [0.5, 1.0], 3, 0.01, "xquad-r zero-shot dev")
    assert again["lam"] == chosen["lam"] == 1.0 and "chosen" not in table
    with pytest.raises(errors.WiseFTError, match="swept λ"):
        wiseft.reuse("cpu", [0.5], 3, 0.01, "xquad-r zero-shot dev")
    with pytest.raises(errors.WiseFTError, match="not 'mlqa-r dev'"):
        wiseft.reuse("cpu", [0.5, 1.0], 3, 0.01, "mlqa-r dev")
    with pytest.raises(errors.WiseFTError, match="picks λ"):
        wiseft.reuse("cpu", [0.5, 1.0], 3, 0.001, "xquad-r zero-shot dev")  # another margin: another λ
    mine = pd.read_csv(folder / "training.csv")
    wiseft.check_same_runs(mine, "cpu", "hybrid/general", [0, 1, 2])
    with pytest.raises(errors.WiseFTError, match="not the ones"):
        wiseft.check_same_runs(mine.assign(train_loss=[0.41, 0.42, 0.44]), "cpu", "hybrid/general", [0, 1, 2])
    (folder / "wiseft.csv").write_text("lam,dev_mono,dev_cross,runs,chosen\n0,0.7,0.4,3,True\n")
    with pytest.raises(errors.WiseFTError, match="earlier design"):
        wiseft.reuse("cpu", [0.5, 1.0], 3, 0.01, "xquad-r zero-shot dev")
