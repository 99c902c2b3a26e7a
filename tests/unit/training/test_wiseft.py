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


def test_lambda_sweep_loads_each_model_once_and_scores_the_base_once(pair, tmp_path, monkeypatch):
    base_dir, ft_dir, _, _ = pair
    loaded, scored = [], []

    def load(name, **kwargs):
        loaded.append(str(name))
        return loading.load_encoder(name, **kwargs)

    def scores(encoder, dev, out_dir, batch_size=16, max_seq_length=None):  # a stand-in for dev mAP: weight summary
        assert max_seq_length == 512  # every λ (and the base) scored at the one evaluation cut-off
        scored.append(encoder)
        w = float(transformer_backbone(encoder).encoder.layer[0].output.dense.weight.detach().sum())
        return {"dev_mono": w, "dev_cross": -w}

    # what wiseft itself loads (a slim model's restore reads its base inside models, not counted here)
    monkeypatch.setattr(wiseft, "loading", SimpleNamespace(load_encoder=load, load_base=loading.load_base))
    monkeypatch.setattr(wiseft.recipe, "dev_scores", scores)
    table = wiseft.lambda_sweep(str(base_dir), [ft_dir, ft_dir], None, [1, 0.5], tmp_path / "sweep", max_seq_length=512)
    assert loaded == [str(base_dir), str(ft_dir), str(ft_dir)] and len(scored) == 1 + 2 * 2
    assert table.columns.tolist() == wiseft.SWEEP_COLUMNS and table.lam.tolist() == [0, 0.5, 1] * 2
    ends = table.groupby("lam").dev_mono.first()
    assert ends[0.5] == pytest.approx((ends[0] + ends[1]) / 2, rel=1e-4)  # the layer's weights are interpolated
    assert pd.read_csv(tmp_path / "sweep" / "lambda_sweep.csv").shape == (6, 4)


def _table(per_lambda: dict[float, tuple[tuple[float, float], tuple[float, float]]]) -> pd.DataFrame:
    """{λ: ((seed-0 mono, cross), (seed-1 mono, cross))} as a λ-sweep table."""
    return pd.DataFrame([{"model_dir": f"seed{s}", "lam": lam, "dev_mono": m, "dev_cross": c}
                         for lam, seeds in per_lambda.items() for s, (m, c) in enumerate(seeds)])  # fmt: skip


BASE = ((0.70, 0.40), (0.70, 0.40))


def test_choose_lambda_takes_the_best_mean_cross_among_lambdas_keeping_mean_mono():
    # means (mono, cross): .25 (.700, .450); .5 (.692, .490); .75 (.685, .530) loses mono; 1 (.64, .56) loses it
    table = _table({0: BASE, 0.25: ((0.71, 0.44), (0.69, 0.46)), 0.5: ((0.704, 0.50), (0.68, 0.48)),
                    0.75: ((0.70, 0.52), (0.67, 0.54)), 1: ((0.64, 0.55), (0.64, 0.57))})  # fmt: skip
    chosen = wiseft.choose_lambda(table, mono_margin=0.01)
    assert chosen["lam"] == 0.5 and chosen["n_models"] == 2 and chosen["qualifying"] == [0, 0.25, 0.5]
    assert (chosen["dev_mono"], chosen["dev_cross"]) == pytest.approx((0.692, 0.49))
    assert (chosen["base_dev_mono"], chosen["base_dev_cross"]) == (0.70, 0.40)
    assert wiseft.choose_lambda(table, mono_margin=0.02)["lam"] == 0.75  # .685 is within .02 of .70


def test_choose_lambda_ties_go_to_the_smaller_lambda_and_nothing_better_keeps_the_base():
    tie = _table({0: BASE, 0.25: ((0.70, 0.45), (0.70, 0.47)), 0.5: ((0.70, 0.44), (0.70, 0.48)),
                  1: ((0.60, 0.60), (0.60, 0.60))})  # fmt: skip
    assert wiseft.choose_lambda(tie)["lam"] == 0.25
    worse = _table({0: BASE, 0.5: ((0.60, 0.50), (0.62, 0.50)), 1: ((0.55, 0.60), (0.55, 0.60))})
    assert wiseft.choose_lambda(worse) == {"lam": 0.0, "dev_mono": 0.70, "dev_cross": 0.40, "base_dev_mono": 0.70,
                                              "base_dev_cross": 0.40, "n_models": 2, "qualifying": [0.0]}  # fmt: skip


@pytest.mark.parametrize(
    "table, match",
    [
        (_table({0.5: BASE, 1: BASE}), r"λ = 0 rows"),
        (_table({0: BASE, 1: BASE}).drop(columns="dev_cross"), "dev_cross"),
        (_table({0: BASE, 1: BASE}).iloc[:-1], "each λ once for each of its 2"),
    ],
)
def test_choose_lambda_rejects_malformed_tables(table, match):
    with pytest.raises(errors.WiseFTError, match=match):
        wiseft.choose_lambda(table)
