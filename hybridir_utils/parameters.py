"""The profile parameters, declared once: name, type, allowed range or choices, and what each is for.

The pipeline checks a whole profile (and its ``-p`` overrides) against :data:`PARAMS` before notebook 01 starts, so
``-p batch_size -3`` fails at once, naming the parameter, the value and what is expected, not half an hour later in
notebook 03. The notebooks' ``parameters`` cells carry the same types as annotations (``papermill --help-notebook``
shows them; a test keeps the two equal), and ``TrainConfig`` checks the keys it shares through :func:`check_value`.

To add a parameter (e.g. for a new profile), add one :class:`Param` to :data:`PARAMS` and declare it, annotated, in
the notebooks that read it. A parameter missing here is an error, never silently passed on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hybridir_utils.data.lareqa_loader import LANGUAGES
from hybridir_utils.data.miracl_loader import LANGUAGES as MIRACL_LANGUAGES
from hybridir_utils.domains.pools import parse_domain_run
from hybridir_utils.domains.taxonomy import CLASS_NAMES
from hybridir_utils.errors import ParameterError
from hybridir_utils.naming import AS_TRAINED_PLANS, DEV_SETS
from hybridir_utils.sampling.alpha import sampling_problem
from hybridir_utils.utils.environment import PRECISIONS

BATCH_POLICIES = ("strict", "shrink")  # a run that cannot fill batch_size: stop, or lower every run's batch


def _languages(dataset: str | None = None) -> Callable[[], Sequence[str]]:
    def choices() -> Sequence[str]:
        return LANGUAGES[dataset] if dataset else sorted({x for langs in LANGUAGES.values() for x in langs})

    return choices


def _datasets() -> Sequence[str]:
    return sorted(LANGUAGES)


def _backends() -> Sequence[str]:
    from hybridir_utils.models.backends import BACKENDS

    return BACKENDS


def _domains() -> Sequence[str]:
    return CLASS_NAMES


def _precisions() -> Sequence[str]:
    return PRECISIONS


def _miracl_languages() -> Sequence[str]:
    return MIRACL_LANGUAGES


def _valid_when(parse: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    """A ``Param.valid`` check from a parser: None when ``parse`` accepts the value, else its error message."""

    def problem(value: Any) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    return problem


_sampling, _domain_run = sampling_problem, _valid_when(parse_domain_run)


@dataclass(frozen=True)
class Param:
    """One parameter. ``type`` is the annotation the notebooks carry (``Optional[...]``, not ``... | None``: papermill's
    parser reads only word characters, brackets and commas); ``kind`` the type of a value (of each item
    when ``many``); ``minimum`` / ``maximum`` bound numbers (``open`` excludes both ends); ``choices`` (a callable,
    resolved late so this module stays cheap to import) lists allowed strings; ``valid`` returns what is wrong with
    one item, or None; ``empty`` allows an empty list."""

    type: str
    doc: str
    kind: type = str
    many: bool = False
    optional: bool = False
    minimum: float | None = None
    maximum: float | None = None
    open: bool = False
    choices: Callable[[], Sequence[str]] | None = None
    valid: Callable[[Any], str | None] | None = None
    mapping: bool = False  # a dict dataset -> list of languages (or None)
    empty: bool = False  # a list may be empty


def number(kind: type, minimum: float | None = None, maximum: float | None = None, open_: bool = False) -> dict:
    """The ``Param`` fields of a bounded number: ``Param("int", doc, **number(int, 1))``."""
    return {"kind": kind, "minimum": minimum, "maximum": maximum, "open": open_}


PARAMS: dict[str, Param] = {
    "run_dir": Param("str", "output folder of this run (set by the pipeline)"),
    "results_dir": Param("str", "result tables of this profile (set by the pipeline)"),
    "xquad_languages": Param("Optional[list[str]]", "XQuAD-R languages (None: all 11)", many=True, optional=True,
                             choices=_languages("xquad-r")),
    "mlqa_languages": Param("Optional[list[str]]", "MLQA-R languages (None: all 7)", many=True, optional=True,
                            choices=_languages("mlqa-r")),
    "encoder_name": Param("str", "encoder of the tokenizer and the domain classifier"),
    "target_domains": Param("list[str]", "domains to focus training on", many=True, choices=_domains),
    "domain_weight": Param("float", "oversampling weight of the target domain in weighted pools",
                           **number(float, 0, open_=True)),
    "base_model": Param("str", "encoder to fine-tune (any name models.load_encoder accepts)"),
    "train_dataset": Param("str", "training data; the other LAReQA set is the test set", choices=_datasets),
    "train_languages": Param("Optional[list[str]]", "training languages (None: all of the training set)", many=True,
                             optional=True, choices=_languages()),
    "train_max_groups": Param("Optional[int]", "subsample to this many question groups (None: all)", optional=True,
                              **number(int, 1)),
    "batch_size": Param("int", "pairs per training batch (in-batch negatives: batch_size - 1)", **number(int, 1)),
    "max_seq_length": Param("int", "token cut-off of training", **number(int, 1)),
    "eval_max_seq_length": Param("int", "token cut-off at which every system is scored (one for all)",
                                 **number(int, 1, 512)),
    "domain_groups": Param("Optional[int]", "question groups every domain arm draws per seed (None: 80% of the "
                           "smallest target domain)", optional=True, **number(int, 1)),
    "dev_share": Param("float", "share of training articles held out of training (the in-distribution dev)",
                       **number(float, 0, 1, open_=True)),
    "dev_seed": Param("int", "seed of that split", **number(int, 0)),
    "dev_set": Param("str", "where the recipe and λ are chosen: zero-shot (the test set's dev articles) or training "
                     "(held-out training articles, the earlier design)", choices=lambda: DEV_SETS),
    "zero_shot_dev_share": Param("float", "share of the test set's articles held out, per domain, as the zero-shot "
                                 "dev", **number(float, 0, 1, open_=True)),
    "zero_shot_dev_seed": Param("int", "seed of the zero-shot dev split", **number(int, 0)),
    "dev_languages": Param("list[str]", "languages of the dev pools", many=True, choices=_languages()),
    "sweep_scales": Param("list[float]", "MNRL logit scales (1 / temperature)", many=True,
                          **number(float, 0, open_=True)),
    "sweep_lrs": Param("list[float]", "learning rates", many=True, **number(float, 0, 1, open_=True)),
    "sweep_steps": Param("list[int]", "step counts scored on dev", many=True, **number(int, 1)),
    "warmup_steps": Param("int", "linear warm-up steps, then a constant learning rate", **number(int, 1)),
    "mono_margin": Param("float", "allowed loss of dev monolingual mAP against the untrained model",
                         **number(float, 0, 1)),
    "recipe_from": Param("Optional[str]", "profile whose committed recipe.csv is reused instead of sweeping (same "
                         "data, dev split, grid and rule)", optional=True),
    "seeds": Param("list[int]", "seeds of the main comparison", many=True, **number(int, 0)),
    "samplings": Param("list[str]", "samplings on the general pool: presets or alpha<α> (the α curve)", many=True,
                       valid=_sampling),
    "alpha_curve_seeds": Param("Optional[list[int]]", "seeds of the alpha<α> samplings (None: seeds)", many=True,
                               optional=True, **number(int, 0)),
    "domain_runs": Param("list[str]", "domain-focused runs and their controls ('<domain>:<mode>')", many=True,
                         valid=_domain_run, empty=True),
    "domain_seeds": Param("Optional[list[int]]", "seeds of the domain-focused runs (None: seeds)", many=True,
                          optional=True, **number(int, 0)),
    "topic_control_seeds": Param("Optional[list[int]]", "seeds of the other-topic controls, size-<domain> runs "
                                 "(None: domain_seeds)", many=True, optional=True, **number(int, 0)),
    "wise_lambdas": Param("list[float]", "WiSE-FT weights of the trained model swept on dev (empty: no WiSE-FT)",
                          many=True, empty=True, **number(float, 0, 1)),
    "wise_runs": Param("int", "runs of hybrid/general the WiSE-FT sweep is paired over", **number(int, 1)),
    "wiseft_from": Param("Optional[str]", "profile whose committed λ curve is reused (the same runs, checked)",
                         optional=True),
    "wise_test_runs": Param("int", "swept runs whose λ grid is also scored on the test (a diagnostic; 0: none)",
                            **number(int, 0)),
    "score_as_trained": Param("bool", "score interpolated runs as trained too (<system>@trained)", kind=bool),
    "as_trained_plan": Param("str", "as-trained rows: interpolation (paired with their WiSE-FT) or all (a plan)",
                             choices=lambda: AS_TRAINED_PLANS),
    "eval_languages": Param("dict[str, Optional[list[str]]]", "dataset -> test languages (None: all)", mapping=True),
    "eval_max_articles": Param("Optional[int]", "articles per test set (seeded choice; None: all)", optional=True,
                               **number(int, 1)),
    "baselines": Param("list[str]", "frozen models scored beside the base model", many=True),
    "batch_policy": Param("str", "a run that cannot fill batch_size: strict stops, shrink lowers every run's batch",
                          choices=lambda: BATCH_POLICIES),
    "precision": Param("str", "training and encoding precision (auto: bf16 on a GPU)",
                       choices=_precisions),
    "write_runs": Param("bool", "write TREC run files (a large pool's runs cost minutes)", kind=bool),
    "score_systems": Param("bool", "score every system (False: read the scores an archive brought)", kind=bool),
    "models_from": Param("Optional[str]", "profile whose data, domains and trained models this one scores (read by "
                         "the pipeline; notebooks 01-03 are then not run)", optional=True),
    "eval_systems": Param("Optional[list[str]]", "trained systems scored (None: every run of notebook 03)", many=True,
                          optional=True),
    "cell_timeout": Param("int", "papermill's per-cell limit in seconds (read by the pipeline)", **number(int, 1)),
    "n_boot": Param("int", "bootstrap replicates for confidence intervals", **number(int, 1)),
    "encode_backend": Param("str", "inference backend of e5 and trained models", choices=_backends),
    "encode_batch_size": Param("int", "encode batch size", **number(int, 1)),
    "miracl_dir": Param("Optional[str]", "MIRACL: None (skip), 'hub', or a folder of local files", optional=True),
    "miracl_languages": Param("Optional[list[str]]", "MIRACL languages", many=True, optional=True,
                              choices=_miracl_languages),
}  # fmt: skip


def _expected(p: Param) -> str:
    """What a value of ``p`` must be, in words."""
    what = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[p.kind]
    if p.minimum is not None or p.maximum is not None:
        low = "-inf" if p.minimum is None else f"{p.minimum:g}"
        high = "inf" if p.maximum is None else f"{p.maximum:g}"
        left = "[" if p.minimum is not None and not p.open else "("
        right = "]" if p.maximum is not None and not p.open else ")"
        what += f" in {left}{low}, {high}{right}"
    if p.choices is not None:
        what += f" among {list(p.choices())}"
    if p.many:
        what = f"a {'' if p.empty else 'non-empty '}list, each item {what}"
    return what + (", or null" if p.optional else "")


def _item_problem(p: Param, item: Any) -> str | None:
    if p.kind is float:
        ok = isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item)
    elif p.kind is bool:
        ok = isinstance(item, bool)
    else:
        ok = isinstance(item, p.kind) and not isinstance(item, bool)
    if not ok:
        return "wrong type"
    if p.minimum is not None and (item <= p.minimum if p.open else item < p.minimum):
        return "too small"
    if p.maximum is not None and (item >= p.maximum if p.open else item > p.maximum):
        return "too large"
    if p.choices is not None and item not in p.choices():
        return "not allowed"
    return p.valid(item) if p.valid is not None else None


def _mapping_problem(value: Any) -> str | None:
    if not isinstance(value, dict) or not value:
        return "a non-empty mapping dataset -> list of languages or null"
    for dataset, langs in value.items():
        if dataset not in _datasets():
            return f"dataset keys among {list(_datasets())}, not {dataset!r}"
        choices = _languages(dataset)()
        if langs is not None and (not isinstance(langs, list) or not langs or not set(langs) <= set(choices)):
            return f"{dataset}: a non-empty list of languages among {list(choices)} or null, not {langs!r}"
    return None


def check_value(name: str, value: Any, param: Param | None = None, raise_: bool = True) -> str | None:
    """Check one value against its declaration (``PARAMS[name]`` unless given); raise (or return) the message."""
    p = param or PARAMS.get(name)
    if p is None:
        raise ParameterError(f"unknown parameter {name!r}; declared: {sorted(PARAMS)}")
    problem = None
    if p.mapping:
        problem = _mapping_problem(value) if value is not None or not p.optional else None
    elif value is None:
        problem = None if p.optional else "missing"
    elif p.many:
        items = value if isinstance(value, list) else None
        empty = not items and not (p.empty and items == [])
        bad = ["not a list"] if items is None or empty else [m for i in items if (m := _item_problem(p, i))]
        problem = bad[0] if bad else None
    else:
        problem = _item_problem(p, value)
    if problem is None:
        return None
    message = f"parameter {name}={value!r}: expected {_expected(p) if not p.mapping else problem}"
    if p.valid is not None and problem not in ("wrong type", "not a list", "missing"):
        message += f" ({problem})"
    if raise_:
        raise ParameterError(message)
    return message


def check(params: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """Check every parameter of a profile (with its overrides); one error lists each unknown or bad one."""
    unknown = sorted(set(params) - set(PARAMS))
    problems = [f"unknown parameter(s) {unknown}: not declared in hybridir_utils.parameters.PARAMS"] if unknown else []
    problems += [f"parameter {k} is missing" for k in required if k not in params]
    problems += [m for k, v in params.items() if k in PARAMS and (m := check_value(k, v, raise_=False))]
    if params.get("score_systems") is False and params.get("miracl_dir"):  # MIRACL would load the trained models
        problems.append("score_systems false (scores from an archive) cannot score MIRACL: set miracl_dir null")
    if problems:
        raise ParameterError("; ".join(problems))
    return params


def check_given(namespace: dict[str, Any]) -> None:
    """Check the declared parameters found in a notebook's namespace (``globals()``): edited defaults too."""
    check({k: v for k, v in namespace.items() if k in PARAMS})
