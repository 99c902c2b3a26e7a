"""Test-overlap guard, freezing, and short real e5-small runs (slow); the config and the run folder have their own
files (test_train_config, test_run_folder)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from hybridir_utils.errors import ArticleOverlapError, TrainConfigError
from hybridir_utils.training.config import TrainConfig
from hybridir_utils.training.trainer import freeze, loss_dataset, pairs_fingerprint, train


def test_pairs_fingerprint_tracks_the_data_not_the_row_order(tiny_pairs):
    pairs = tiny_pairs
    assert pairs_fingerprint(pairs) == pairs_fingerprint(pairs.sample(frac=1, random_state=0))
    assert pairs_fingerprint(pairs) != pairs_fingerprint(pairs.iloc[1:])
    assert pairs_fingerprint(pairs) != pairs_fingerprint(pairs.assign(passage=pairs.passage + "."))


def test_train_refuses_before_loading_a_model(tmp_path, shared_data_dir, tiny_pairs):
    with pytest.raises(ArticleOverlapError, match="both xquad-r"):
        train(TrainConfig(train_dataset="xquad-r", eval_dataset="xquad-r", output_dir=str(tmp_path / "a")),
              pairs=tiny_pairs, data_dir=shared_data_dir)  # fmt: skip
    with pytest.raises(ValueError, match="cannot be met"):  # 12 groups cannot fill a batch of 32
        train(TrainConfig(output_dir=str(tmp_path / "b")), pairs=tiny_pairs, data_dir=shared_data_dir)
    run = tmp_path / "c"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({**TrainConfig(output_dir=str(run)).to_dict(), "seed": 5}))
    with pytest.raises(TrainConfigError, match=r"different config \(keys \['seed'\]\)"):
        train(TrainConfig(output_dir=str(run)), pairs=tiny_pairs)


def test_loss_dataset_holds_only_loss_inputs_in_order(tiny_pairs):
    pairs = tiny_pairs
    ds = loss_dataset(pairs)
    assert ds.column_names == ["query", "passage"]
    assert ds["query"] == pairs["query"].tolist() and ds["passage"] == pairs["passage"].tolist()


def test_freeze_embeddings_and_lower_layers():
    from transformers import BertConfig, BertModel

    class Module(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            cfg = BertConfig(vocab_size=500, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                             intermediate_size=32)  # fmt: skip
            self.auto_model = BertModel(cfg)

    model = torch.nn.Sequential(Module())
    backbone = model[0].auto_model
    total = sum(p.numel() for p in model.parameters())
    counts = freeze(model, embeddings=True, layers=2)
    assert not backbone.embeddings.word_embeddings.weight.requires_grad
    assert backbone.embeddings.position_embeddings.weight.requires_grad  # only the word matrix is frozen
    assert [any(p.requires_grad for p in layer.parameters()) for layer in backbone.encoder.layer] == [
        False,
        False,
        True,
    ]
    frozen = 500 * 16 + sum(p.numel() for layer in backbone.encoder.layer[:2] for p in layer.parameters())
    assert counts == {"parameters": total, "trainable": total - frozen}
    with pytest.raises(TrainConfigError, match="freeze_layers=4"):
        freeze(torch.nn.Sequential(Module()), embeddings=False, layers=4)


# ---------------------------------------------------------------------------------------------- real run
def _mnrl_loss(model, queries, passages) -> float:
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    loss = MultipleNegativesRankingLoss(model)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        features = [model.preprocess(["query: " + q for q in queries]),
                    model.preprocess(["passage: " + p for p in passages])]  # fmt: skip
        value = float(loss(features, None))
    model.train(was_training)
    return value


@pytest.mark.slow
def test_short_real_training_lowers_heldout_loss_resumes_and_reloads(tmp_path, shared_data_dir, e5_model):
    from transformers import TrainerCallback

    from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
    from hybridir_utils.models.loading import E5_NAME, fingerprint, load_base, load_encoder

    pairs = training_pairs(load_lareqa("mlqa-r", languages=("en", "de", "ar"), data_dir=shared_data_dir))
    groups = np.random.default_rng(0).permutation(sorted(pairs.group.unique()))
    train_pairs = pairs[pairs.group.isin(groups[:200])]
    # Held out: 24 unseen groups, one cross-lingual pair each (a fixed in-batch-negative batch).
    held = pairs[pairs.group.isin(groups[200:224]) & (pairs.query_lang == "en") & (pairs.passage_lang != "en")]
    held = held.drop_duplicates("group")
    assert len(held) >= 16

    old_length = e5_model.max_seq_length
    try:
        e5_model.max_seq_length = 64
        before = _mnrl_loss(e5_model, held["query"].tolist(), held.passage.tolist())
        base_fingerprint = fingerprint(e5_model)
    finally:
        e5_model.max_seq_length = old_length

    cfg = TrainConfig(
        batch_size=8, max_steps=12, max_seq_length=64, logging_steps=1, save_steps=6, warmup_ratio=0.0,
        freeze_embeddings=True, num_threads=1, output_dir=str(tmp_path / "run"), seed=3,
    )  # fmt: skip

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 8:
                raise RuntimeError("simulated crash at step 8")

    class Saves(TrainerCallback):  # the steps whose checkpoint the trainer wrote
        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_save(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    crashed, resumed = Saves(), Saves()
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, pairs=train_pairs, data_dir=shared_data_dir, callbacks=[crashed, Crash()])
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-6").is_dir() and crashed.steps == [6]
    assert not (tmp_path / "run" / "model").exists()

    model_dir = train(cfg, pairs=train_pairs, data_dir=shared_data_dir, callbacks=[resumed])  # from checkpoint-6
    assert resumed.steps == []  # no checkpoint at the last step (publish saves the model and drops checkpoints)
    assert fingerprint(load_base(E5_NAME)) == base_fingerprint  # trained a copy: the shared base is untouched
    info = json.loads((model_dir / "train_info.json").read_text())
    assert info["resumed_from"] == "checkpoint-6" and info["steps"] == 12
    assert info["trainable"] < 0.25 * info["parameters"]  # the 250k-token embedding matrix stayed frozen
    log = pd.read_csv(model_dir / "loss_log.csv")
    assert log.step.tolist() == list(range(1, 13)) and np.isfinite(log.loss).all()
    assert TrainConfig.from_dict(json.loads((model_dir / "train_config.json").read_text())) == cfg
    assert "hybridir training configuration" in (model_dir / "README.md").read_text()

    reloaded = load_encoder(str(model_dir))
    assert reloaded.prompts["query"] == "query: " and reloaded.prompts["passage"] == "passage: "
    assert reloaded.max_seq_length == 64
    assert fingerprint(reloaded) != base_fingerprint
    after = _mnrl_loss(reloaded, held["query"].tolist(), held.passage.tolist())
    print(f"held-out MNRL loss {before:.4f} -> {after:.4f}")
    assert after < before, (before, after)
    assert train(cfg, pairs=train_pairs) == model_dir  # finished run with the same config: reused, not retrained


@pytest.mark.slow
def test_training_cli_trains_one_config_file_and_records_the_machine(tmp_path, shared_data_dir, monkeypatch, capsys):
    """The single-run entry point that `torchrun -m hybridir_utils.training --config` starts on every GPU."""
    import yaml

    from hybridir_utils.training.trainer import main

    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(shared_data_dir))
    cfg = {"languages": ["en", "de"], "max_groups": 30, "batch_size": 4, "max_steps": 2, "save_steps": 2,
           "max_seq_length": 32, "output_dir": str(tmp_path / "run"), "precision": "fp32"}  # fmt: skip
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["--config", str(tmp_path / "run.yaml")]) == 0
    assert f"model: {tmp_path / 'run' / 'model'}" in capsys.readouterr().out
    info = json.loads((tmp_path / "run" / "model" / "train_info.json").read_text())
    assert info["steps"] == 2 and info["environment"]["precision"] == "fp32"
    assert info["environment"]["device"] == "cpu" and "cpu_flags" in info["environment"]


def test_loggers_and_the_hub_are_checked_before_a_model_loads(monkeypatch):
    import transformers.integrations as integrations

    from hybridir_utils.training.trainer import _check_reporting

    monkeypatch.setattr(integrations, "is_wandb_available", lambda: False)
    with pytest.raises(TrainConfigError, match=r"report_to \['wandb'\]: not installed \(pip install wandb\)"):
        _check_reporting(TrainConfig(report_to=["wandb"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TrainConfigError, match="push_to_hub to 'me/model': HF_HUB_OFFLINE is set"):
        _check_reporting(TrainConfig(push_to_hub=True, hub_model_id="me/model"))
    _check_reporting(TrainConfig())  # nothing asked, nothing checked


@pytest.mark.slow
def test_a_run_logs_to_tensorboard_writes_its_batches_and_pushes_the_whole_model(tmp_path, shared_data_dir,
                                                                                 monkeypatch):  # fmt: skip
    from sentence_transformers import SentenceTransformer

    pushed = []
    monkeypatch.setattr(SentenceTransformer, "push_to_hub", lambda self, repo, **kw: pushed.append(
        (repo, sum(p.numel() for p in self.parameters()))))  # fmt: skip
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # the push itself is replaced: nothing leaves the machine
    cfg = TrainConfig(languages=["en", "de"], max_groups=30, batch_size=4, max_steps=3, max_seq_length=32,
                      output_dir=str(tmp_path / "run"), report_to=["tensorboard"], log_batches=True,
                      push_to_hub=True, hub_model_id="me/hybrid-e5", logging_steps=1)  # fmt: skip
    model_dir = train(cfg, data_dir=shared_data_dir)
    batches = pd.read_csv(tmp_path / "run" / "batches.csv")
    assert batches.step.tolist() == [1, 2, 3] and set(batches.kind) <= {"mono", "cross"}
    assert list((tmp_path / "run" / "logs").glob("events.out.tfevents.*"))  # kept: not under checkpoints/
    assert pushed and pushed[0][0] == "me/hybrid-e5" and pushed[0][1] > 100_000_000  # whole: embeddings included
    card = (model_dir / "README.md").read_text()
    assert "Batch sampler: `hybridir_utils.sampling.HybridBatchSampler`, alpha = 0.5" in card
