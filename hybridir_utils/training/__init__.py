"""Training: one run's settings (``TrainConfig``), ``train`` on the sentence-transformers trainer (resumable after a
kill), the recipe chosen on held-out dev articles, the grid of trainings a profile runs, and WiSE-FT.

``recipe`` and ``wiseft`` are public as modules (``training.recipe.choose``, ``training.wiseft.curve``)."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.training import recipe, wiseft
    from hybridir_utils.training.config import TrainConfig
    from hybridir_utils.training.experiment_grid import (
        TrainingSpec,
        draw_size,
        grid,
        grid_batch_size,
        loss_log,
        train_grid,
        training_pool,
        training_table,
    )
    from hybridir_utils.training.trainer import loss_dataset, train

__all__ = [
    "TrainConfig",
    "TrainingSpec",
    "draw_size",
    "grid",
    "grid_batch_size",
    "loss_dataset",
    "loss_log",
    "recipe",
    "train",
    "train_grid",
    "training_pool",
    "training_table",
    "wiseft",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
