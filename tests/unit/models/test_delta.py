"""Disk: a trained model is saved as its difference from the base and loads back bit for bit; checkpoints go."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from hybridir_utils import errors
from hybridir_utils.models import delta
from hybridir_utils.models.loading import E5_NAME, fingerprint, load_base, load_encoder
from hybridir_utils.training.config import TrainConfig
from hybridir_utils.training.trainer import train, transformer_backbone

MB = 1024 * 1024


def _size(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def _bitwise_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(_bits(a[k]), _bits(b[k])) for k in a)


@pytest.fixture(scope="module")
def full_and_slim(tmp_path_factory):
    """A changed e5-small (one layer and the position embeddings moved) saved in full, and the same saved slim."""
    folder = tmp_path_factory.mktemp("delta")
    model = load_encoder(E5_NAME)
    state = transformer_backbone(model).state_dict()
    with torch.no_grad():
        state["encoder.layer.0.attention.self.query.weight"].add_(0.01)
        state["embeddings.position_embeddings.weight"].mul_(1.5)
    model.save_pretrained(str(folder / "full"))
    shutil.copytree(folder / "full", folder / "slim")
    sizes = delta.slim(folder / "slim", E5_NAME, load_base)
    return folder / "full", folder / "slim", sizes


@pytest.mark.slow
def test_slim_save_drops_only_tensors_equal_to_the_base(full_and_slim):
    full, slim, sizes = full_and_slim
    manifest = json.loads((slim / delta.MANIFEST).read_text())
    assert manifest["base"] == E5_NAME
    assert "embeddings.word_embeddings.weight" in manifest["tensors"]
    assert "encoder.layer.0.attention.self.query.weight" not in manifest["tensors"]  # changed: kept
    assert "embeddings.position_embeddings.weight" not in manifest["tensors"]
    assert sizes["dropped_bytes"] > 3 * sizes["kept_bytes"]
    assert _size(slim) < 150 * MB < _size(full)
    assert not delta.is_slim(full)


@pytest.mark.slow
def test_slim_save_loads_to_bit_identical_weights_and_embeddings(full_and_slim, xquad_small):
    full, slim, _ = full_and_slim
    a, b = load_encoder(str(full)), load_encoder(str(slim))
    assert _bitwise_equal(a.state_dict(), b.state_dict())
    assert fingerprint(a) == fingerprint(b)  # so the embedding caches of earlier full saves stay valid
    texts = xquad_small.candidates.text.tolist()[:24]
    ea = a.encode(texts, prompt_name="passage", batch_size=8, convert_to_numpy=True)
    eb = b.encode(texts, prompt_name="passage", batch_size=8, convert_to_numpy=True)
    assert np.array_equal(ea, eb)


@pytest.mark.slow
def test_slim_model_refuses_a_different_base(full_and_slim, tmp_path):
    _, slim, _ = full_and_slim
    copy = tmp_path / "slim"
    shutil.copytree(slim, copy)
    manifest = json.loads((copy / delta.MANIFEST).read_text())
    manifest["tensors"]["embeddings.word_embeddings.weight"]["xxh3"] = "0" * 32
    (copy / delta.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(errors.DeltaError, match=r"word_embeddings\.weight of base '\S+' is not the one"):
        load_encoder(str(copy))


@pytest.mark.slow
def test_a_finished_run_is_small_has_no_checkpoints_and_reloads_exactly(tmp_path, mlqa_small, shared_data_dir):
    from transformers import TrainerCallback

    trained = {}

    class Keep(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            trained.update({k: v.detach().clone() for k, v in model.state_dict().items()})

    from hybridir_utils.data.lareqa_loader import training_pairs

    cfg = TrainConfig(batch_size=8, max_steps=2, max_seq_length=32, logging_steps=1, save_steps=1, warmup_ratio=0.0,
                      num_threads=1, output_dir=str(tmp_path / "run"), seed=0)  # fmt: skip
    model_dir = train(cfg, pairs=training_pairs(mlqa_small), data_dir=shared_data_dir, callbacks=[Keep()])
    assert not (tmp_path / "run" / "checkpoints").exists()  # resumable only while unfinished
    assert delta.is_slim(model_dir) and _size(tmp_path / "run") < 150 * MB
    assert _bitwise_equal(load_encoder(str(model_dir)).state_dict(), trained)
