"""TrainConfig: validation by key name, YAML round trip, and a run identity that ignores runtime-only keys."""

from __future__ import annotations

import pytest

from hybridir_utils.errors import TrainConfigError
from hybridir_utils.training.config import TrainConfig


def test_config_round_trips_through_yaml_and_rejects_unknown_keys(tmp_path):
    cfg = TrainConfig(preset="x-y", batch_size=16, languages=["en", "de"], domain_weights={"news": 2.0})
    path = tmp_path / "run.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert TrainConfig.from_yaml(path) == cfg
    assert cfg.resolved_alpha == 0.0 and cfg.batches_name() == "x-y"
    assert TrainConfig(alpha=0.3).batches_name() == "alpha0.3"
    with pytest.raises(TrainConfigError, match=r"'batchsize' \(did you mean 'batch_size'\?\)"):
        TrainConfig.from_dict({"batchsize": 8})
    path.write_text("learning_rate: 1e-4\n")
    with pytest.raises(TrainConfigError, match=f"{path.name}.*learning_rate"):
        TrainConfig.from_yaml(path)
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml"):
        TrainConfig.from_yaml(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"alpha": 1.2}, "alpha"),
        ({"preset": "x-y", "alpha": 0.5}, "contradicts"),
        ({"preset": "mono"}, "preset"),
        ({"train_dataset": "squad"}, "train_dataset"),
        ({"eval_dataset": "miracl"}, "eval_dataset"),
        ({"languages": ["ru"]}, "ru"),  # not an MLQA-R language
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"weight_decay": 2}, "weight_decay"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"max_steps": 0}, "max_steps"),
        ({"freeze_layers": -1}, "freeze_layers"),
        ({"loss": "triplet"}, "loss"),
        ({"lr_scheduler": "step"}, "lr_scheduler"),
        ({"warmup_steps": 0}, "warmup_steps"),
        ({"domain_weights": ["news"]}, "domain_weights"),
        ({"report_to": ["mlflow"]}, "report_to"),
        ({"report_to": 3}, "report_to"),
        ({"push_to_hub": True}, "hub_model_id"),
        ({"push_to_hub": True, "hub_model_id": "no-owner"}, "hub_model_id"),
        ({"log_batches": "yes"}, "log_batches"),
    ],
)
def test_config_rejects_bad_values_by_name(kwargs, needle):
    with pytest.raises(TrainConfigError, match=needle):
        TrainConfig(**kwargs)


def test_run_name_tracks_what_is_learned_not_runtime_settings():
    base = TrainConfig()
    assert base.run_name() == TrainConfig().run_name()
    assert base.run_name().startswith("multilingual-e5-small-mlqa-r-hybrid-s0-")
    assert TrainConfig(seed=1).run_name() != base.run_name()
    assert TrainConfig(lr=1e-5).run_name() != base.run_name()
    assert TrainConfig(num_threads=1).run_name() == base.run_name()
    reported = TrainConfig(report_to="tensorboard", log_batches=True, push_to_hub=True, hub_model_id="me/model")
    assert reported.run_name() == base.run_name()  # where a run is reported is not what it learns
    assert reported.report_to == ["tensorboard"] and TrainConfig(report_to="none").report_to == []
    assert (
        base.resolved_eval_dataset == "xquad-r"
        and TrainConfig(train_dataset="xquad-r").resolved_eval_dataset == "mlqa-r"
    )
