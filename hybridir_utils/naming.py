"""The names of systems, arms and controls, and their parsing: one vocabulary, standard library only.

A *run* is (sampling, domain strategy, seed) and its label ``hybrid/news-in-domain/s3`` names its model folder,
its evaluation folder and its rows in every table; a *system* is the label without the seed. A domain strategy
is ``general`` (the whole pool) or ``<domain>-<mode>``: ``in-domain``, ``weighted``, or a control of the in-domain
arm's size and article structure, ``size-random`` (random articles) or ``size-<other domain>`` (another topic).
Profiles write domain runs as ``<domain>:<mode>``.

A profile that interpolates its runs (WiSE-FT) scores two variants of each: the interpolated model under the plain
name (what the profile ships and its answer is about) and the run as trained under ``<system>@trained``. Without
interpolation there is one variant, the plain name, and it is the model as trained.

Every part of the package that builds, parses or tests a name does it here, so a new arm or variant is defined in
one place, and the report reads names without importing the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GENERAL = "general"
IN_DOMAIN = "in-domain"
WEIGHTED = "weighted"
POOL_MODES = (GENERAL, IN_DOMAIN, WEIGHTED)  # the whole pool, the target domain only, or upweighted
CONTROL_PREFIX = "size-"  # "news:size-random", "news:size-culture": pools of the in-domain arm's size and structure
RANDOM_CONTROL = "random"
AS_TRAINED = "@trained"  # the run as trained, beside its interpolated (WiSE-FT) variant
DEFAULT_SAMPLING = "hybrid"  # the sampling of every domain arm
AS_TRAINED_PLANS = ("interpolation", "all")  # as-trained variants against their WiSE-FT only, or the whole plan too
DEV_SETS = ("zero-shot", "training")  # the test set's held-out dev articles, or held-out training articles


@dataclass(frozen=True)
class TrainingSpec:
    """One run of the grid: sampling (a preset x-x-mono | x-y | hybrid, or alpha<α>), domain, pool mode, seed."""

    sampling: str
    domain: str = GENERAL  # "general" or a target domain
    mode: str = GENERAL  # general | in-domain | weighted | size-<control>
    seed: int = 0

    @property
    def system(self) -> str:
        strategy = GENERAL if self.mode == GENERAL else f"{self.domain}-{self.mode}"
        return f"{self.sampling}/{strategy}"

    @property
    def label(self) -> str:
        return run_label(self.system, self.seed)

    @classmethod
    def from_system(cls, system: str) -> TrainingSpec:
        """The inverse of ``system`` (either variant): ``"hybrid/news-size-random"`` -> ("hybrid", "news",
        "size-random")."""
        sampling, _, strategy = shipped(system).partition("/")
        if strategy in ("", GENERAL):
            return cls(sampling)
        domain, _, mode = strategy.partition("-")
        return cls(sampling, domain, mode)


def run_label(system: str, seed: int) -> str:
    """``hybrid/general`` and 3 -> ``hybrid/general/s3``."""
    return f"{system}/s{int(seed)}"


def is_trained(system: str) -> bool:
    """A trained system (``sampling/strategy``, either variant), not a frozen model such as the base."""
    return "/" in str(system)


def as_trained(system: str) -> str:
    """The as-trained variant's name of a trained system."""
    return system if is_as_trained(system) else f"{system}{AS_TRAINED}"


def is_as_trained(system: str) -> bool:
    return str(system).endswith(AS_TRAINED)


def shipped(system: str) -> str:
    """The plain name of either variant: ``hybrid/general@trained`` -> ``hybrid/general``."""
    return str(system)[: -len(AS_TRAINED)] if is_as_trained(system) else str(system)


def sampling_of(system: str) -> str:
    return shipped(system).partition("/")[0]


def is_general(system: str) -> bool:
    return is_trained(system) and TrainingSpec.from_system(system).mode == GENERAL


def in_domain(domain: str, sampling: str = DEFAULT_SAMPLING) -> str:
    return TrainingSpec(sampling, domain, IN_DOMAIN).system


def control(domain: str, of: str = RANDOM_CONTROL, sampling: str = DEFAULT_SAMPLING) -> str:
    """The control of ``domain``'s in-domain arm: ``of`` random articles or another topic's."""
    return TrainingSpec(sampling, domain, f"{CONTROL_PREFIX}{of}").system


def general(sampling: str = DEFAULT_SAMPLING) -> str:
    return TrainingSpec(sampling).system


def random_control_of(system: str) -> str | None:
    """The random control a topical pool (in-domain arm or other-topic control) is compared with, in the same
    variant; None for general training, weighted pools and the random control itself."""
    run = TrainingSpec.from_system(system)
    topical = run.mode == IN_DOMAIN or (run.mode.startswith(CONTROL_PREFIX) and topic_of(system) is not None)
    if not topical:
        return None
    name = control(run.domain, sampling=run.sampling)
    return as_trained(name) if is_as_trained(system) else name


def is_control(system: str) -> bool:
    """Whether ``system`` is a structure-matched control (random or other-topic), not an arm of the question."""
    return is_trained(system) and TrainingSpec.from_system(system).mode.startswith(CONTROL_PREFIX)


def topic_of(system: str) -> str | None:
    """The topic a pool is focused on: the target of an in-domain pool, the domain of an other-topic control
    (``hybrid/news-size-culture`` -> culture); None for general training and random controls."""
    if not is_trained(system):
        return None
    run = TrainingSpec.from_system(system)
    if run.mode == IN_DOMAIN:
        return run.domain
    other = run.mode[len(CONTROL_PREFIX) :] if run.mode.startswith(CONTROL_PREFIX) else None
    return other if other not in (None, RANDOM_CONTROL) else None


def target_domains(systems) -> list[str]:
    """The target domains of the in-domain arms among ``systems``, sorted."""
    return sorted({TrainingSpec.from_system(s).domain for s in systems if is_trained(s)
                   and TrainingSpec.from_system(s).mode == IN_DOMAIN})  # fmt: skip


def split_domain_run(spec: str) -> tuple[str, str] | None:
    """``"science:in-domain"`` -> ("science", "in-domain"); None when ``spec`` is not of the form
    ``<domain>:<mode>`` with a known mode (``domains.parse_domain_run`` checks the domains against the taxonomy)."""
    domain, sep, mode = str(spec).partition(":")
    control = mode.startswith(CONTROL_PREFIX) and len(mode) > len(CONTROL_PREFIX)
    known = (mode in POOL_MODES and mode != GENERAL) or control
    return (domain, mode) if sep and domain and known else None


def base_label(base_model: str) -> str:
    """The table label of a frozen model: its last path part (``sentence-transformers/LaBSE`` -> LaBSE), so that a
    hub id's slash never reads as ``sampling/strategy``."""
    return Path(str(base_model)).name
