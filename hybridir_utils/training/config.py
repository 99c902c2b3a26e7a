"""What one fine-tuning run is: :class:`TrainConfig`, its validation and its identity.

Kept apart from ``training.trainer`` because a config is built, checked and compared (recipe sweeps, experiment grids,
notebook parameter checks, resume decisions) far more often than a model is trained, and none of that needs the
trainer nor sentence-transformers (the α presets come from ``sampling.alpha``). ``identity`` and
``run_name`` decide when a finished or interrupted run may be reused: they leave out ``RUNTIME_KEYS``, which change
how fast a run goes, not what it learns.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridir_utils import errors, parameters
from hybridir_utils.data.lareqa_loader import LANGUAGES
from hybridir_utils.data.splits import ZERO_SHOT_EVAL
from hybridir_utils.errors import TrainConfigError
from hybridir_utils.sampling.alpha import PRESETS, resolve_alpha
from hybridir_utils.utils import paths

LOSSES = ("mnrl", "cached-mnrl")
# constant_with_warmup makes step k of a long run equal to a run of k steps: one sweep run scores several lengths.
SCHEDULERS = ("linear", "constant_with_warmup", "cosine")
# Keys that change how fast a run goes, not what it learns: left out of the run's identity (name, resume check).
# Reporting keys (loggers, the hub, the batch log) say where a run is reported, not what it learns: runtime too.
RUNTIME_KEYS = ("num_threads", "report_to", "push_to_hub", "hub_model_id", "log_batches", "save_model")
# The trainer's loggers this project passes through (transformers' names); each needs its package installed.
REPORTERS = ("tensorboard", "wandb")


@dataclass
class TrainConfig:
    """One fine-tuning run. ``from_dict``/``from_yaml`` reject unknown keys by name."""

    model: str = "multilingual-e5-small"
    train_dataset: str = "mlqa-r"
    languages: list[str] | None = None  # training languages (default: all of train_dataset)
    alpha: float | None = None  # mono-batch probability; default 0.5 (hybrid)
    preset: str | None = None  # "x-x-mono" | "x-y" | "hybrid" (alternative to alpha)
    domains: list[str] | None = None
    domain_weights: dict[str, float] | None = None
    domain_homogeneous: bool = False
    domain_column: str = "domain"
    batch_size: int = 32
    max_steps: int | None = None  # overrides epochs when set
    epochs: float = 1.0
    seed: int = 0
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    warmup_steps: int | None = None  # absolute warm-up steps; overrides warmup_ratio (a sweep needs it fixed)
    lr_scheduler: str = "linear"  # "linear" | "constant_with_warmup" | "cosine" (transformers names)
    scale: float = 20.0  # MNRL logit scale = 1 / temperature (0.05)
    loss: str = "mnrl"  # "mnrl" | "cached-mnrl"
    mini_batch_size: int = 16  # cached-mnrl only: memory is bounded by this, not batch_size
    freeze_embeddings: bool = True
    freeze_layers: int = 0
    max_seq_length: int | None = 128
    gradient_checkpointing: bool = False
    max_groups: int | None = None  # subsample the training set to this many parallel groups
    output_dir: str | None = None  # default: config.models_dir()/finetuned/<run_name>
    eval_dataset: str | None = None  # the test set for the overlap check; default: the other LAReQA set
    allow_test_overlap: bool = False
    drop_test_overlap: bool = True
    logging_steps: int = 10
    save_steps: int = 500
    save_total_limit: int | None = 2
    num_threads: int | None = None  # torch CPU threads; 1 avoids thrashing on a CPU shared with other jobs
    precision: str = "fp32"  # "fp32" | "bf16" | "auto" (environment.resolve_precision: bf16 on a GPU)
    report_to: list[str] = field(default_factory=list)  # trainer loggers: "tensorboard", "wandb" (empty: none)
    push_to_hub: bool = False  # push the final (full) model to hub_model_id; off by default, refused offline
    hub_model_id: str | None = None  # "<user or org>/<name>" on the hub
    log_batches: bool = False  # write <run>/batches.csv: each step's batch type (mono / cross), language, domain
    save_model: bool = True  # false: no model/ (a recipe sweep keeps only its dev scores); train() returns None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, recorded in the model card

    def __post_init__(self) -> None:
        if self.train_dataset not in LANGUAGES:
            raise TrainConfigError(f"train_dataset {self.train_dataset!r} is not one of {sorted(LANGUAGES)}")
        if self.eval_dataset is not None and self.eval_dataset not in LANGUAGES:
            raise TrainConfigError(f"eval_dataset {self.eval_dataset!r} is not one of {sorted(LANGUAGES)}")
        if self.languages is not None:
            if isinstance(self.languages, str):
                self.languages = [self.languages]
            self.languages = list(self.languages)
            unknown = [x for x in self.languages if x not in LANGUAGES[self.train_dataset]]
            if unknown or not self.languages:
                raise TrainConfigError(
                    f"languages {unknown or self.languages} not in {self.train_dataset} "
                    f"({list(LANGUAGES[self.train_dataset])})"
                )
        try:
            resolve_alpha(self.alpha, self.preset)
        except ValueError as exc:
            raise TrainConfigError(f"alpha/preset: {exc}") from exc
        for key in ("batch_size", "max_seq_length", "warmup_steps", "precision"):  # declared once, for both
            if getattr(self, key) is not None:
                _check(key, getattr(self, key), parameters.PARAMS[key])
        for key in ("logging_steps", "save_steps", "mini_batch_size"):
            _check_int(key, getattr(self, key), minimum=1)
        _check_int("seed", self.seed, minimum=0)
        _check_int("freeze_layers", self.freeze_layers, minimum=0)
        for key in ("max_steps", "max_groups", "save_total_limit", "num_threads"):
            if getattr(self, key) is not None:
                _check_int(key, getattr(self, key), minimum=1)
        for key, low in (("lr", 0.0), ("epochs", 0.0), ("scale", 0.0)):
            value = getattr(self, key)
            if not isinstance(value, int | float) or isinstance(value, bool) or not value > low:
                raise TrainConfigError(f"{key} must be a number > {low}, got {value!r}")
        for key, high in (("weight_decay", 1.0), ("warmup_ratio", 0.999)):  # warmup >= 1 would count steps
            value = getattr(self, key)
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= high:
                raise TrainConfigError(f"{key} must be a number in [0, {high}], got {value!r}")
        if self.lr_scheduler not in SCHEDULERS:
            raise TrainConfigError(f"lr_scheduler {self.lr_scheduler!r} is not one of {SCHEDULERS}")
        if self.loss not in LOSSES:
            raise TrainConfigError(f"loss {self.loss!r} is not one of {LOSSES}")
        self._check_reporting()
        if self.domain_weights is not None and not isinstance(self.domain_weights, dict):
            raise TrainConfigError(f"domain_weights must be a mapping domain -> weight, got {self.domain_weights!r}")

    def _check_reporting(self) -> None:
        """report_to as a list of known loggers ("none" / None: no logger); the hub needs a model id."""
        report = self.report_to
        report = [] if report in (None, "none") else [report] if isinstance(report, str) else report
        if not isinstance(report, list | tuple) or any(r not in REPORTERS for r in report):
            raise TrainConfigError(f"report_to must be a list of {REPORTERS} (or 'none'), got {self.report_to!r}")
        self.report_to = list(dict.fromkeys(report))
        for key in ("push_to_hub", "log_batches"):
            if not isinstance(getattr(self, key), bool):
                raise TrainConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        if self.push_to_hub and not (isinstance(self.hub_model_id, str) and "/" in self.hub_model_id):
            raise TrainConfigError(f"push_to_hub needs hub_model_id '<user or org>/<name>', got {self.hub_model_id!r}")

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise TrainConfigError(f"a training config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            hints = {k: difflib.get_close_matches(k, known, n=1) for k in unknown}
            said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
            raise TrainConfigError(f"unknown training config key(s): {said}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training config {path} not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"{path}: not valid YAML ({exc})") from exc
        try:
            return cls.from_dict(data or {})
        except TrainConfigError as exc:
            raise TrainConfigError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The config without runtime-only keys (JSON-normalised): what must match to resume or reuse a run."""
        return json.loads(json.dumps({k: v for k, v in self.to_dict().items() if k not in RUNTIME_KEYS}))

    @property
    def resolved_alpha(self) -> float:
        return resolve_alpha(self.alpha, self.preset)

    @property
    def resolved_eval_dataset(self) -> str:
        return self.eval_dataset or ZERO_SHOT_EVAL[self.train_dataset]

    def batches_name(self) -> str:
        """The preset name when alpha is one, else ``alpha<value>``."""
        names = [k for k, v in PRESETS.items() if v == self.resolved_alpha]
        return names[0] if names else f"alpha{self.resolved_alpha:g}"

    def run_name(self) -> str:
        """Readable and unique: model, data, batch type, seed and a hash of the whole config."""
        digest = hashlib.sha1(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{Path(self.model).name}-{self.train_dataset}-{self.batches_name()}-s{self.seed}-{digest}"

    def resolved_output_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else paths.models_dir() / "finetuned" / self.run_name()


def _check_int(key: str, value: Any, minimum: int) -> None:
    """One integer key, by the checks the pipeline applies to profile parameters (``hybridir_utils.parameters``)."""
    _check(key, value, parameters.Param("int", key, **parameters.number(int, minimum)))


def _check(key: str, value: Any, param: parameters.Param) -> None:
    try:
        parameters.check_value(key, value, param)
    except errors.ParameterError as exc:
        raise TrainConfigError(str(exc)) from exc
