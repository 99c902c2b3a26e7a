"""α, the probability that a batch is monolingual (X-X-mono) rather than cross-lingual (X-Y), and the names a grid
gives it: the paper's presets (``x-x-mono`` = 1, ``x-y`` = 0, ``hybrid`` = 0.5) and ``alpha<value>`` for the points
of the α curve between them. Apart from the sampler so that checking a profile or judging the paper's claims does
not import sentence-transformers.
"""

from __future__ import annotations

import numpy as np

from hybridir_utils.errors import SamplerConfigError

PRESETS: dict[str, float] = {"x-x-mono": 1.0, "x-y": 0.0, "hybrid": 0.5}
ALPHA_PREFIX = "alpha"  # a sampling named by its α: "alpha0.25" (the α curve between the presets)


def resolve_alpha(alpha: float | None = None, preset: str | None = None) -> float:
    """The mono-batch probability from ``alpha`` or a preset name (``x-x-mono``, ``x-y``, ``hybrid``)."""
    if preset is not None:
        if preset not in PRESETS:
            raise SamplerConfigError(f"unknown preset {preset!r}; expected one of {sorted(PRESETS)}")
        if alpha is not None and float(alpha) != PRESETS[preset]:
            raise SamplerConfigError(f"alpha={alpha} contradicts preset {preset!r} (alpha={PRESETS[preset]})")
        return PRESETS[preset]
    if alpha is None:
        return PRESETS["hybrid"]
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.number):  # True is not 1.0, "0.5" no number
        raise SamplerConfigError(f"alpha must be a number in [0, 1], got {alpha!r}")
    value = float(alpha)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise SamplerConfigError(f"alpha must be in [0, 1], got {alpha!r}")
    return value


def sampling_alpha(name: str) -> float:
    """α of a sampling name in a grid: a preset (``x-x-mono`` 1, ``x-y`` 0, ``hybrid`` 0.5) or ``alpha<value>``
    (e.g. ``alpha0.25``), so the α curve is trained and named like the presets."""
    if name in PRESETS:
        return PRESETS[name]
    text = str(name)
    try:
        value = float(text[len(ALPHA_PREFIX) :]) if text.startswith(ALPHA_PREFIX) else None
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise SamplerConfigError(f"unknown sampling {name!r}: a preset {sorted(PRESETS)} or '{ALPHA_PREFIX}<α in "
                                 f"[0, 1]>' (e.g. '{ALPHA_PREFIX}0.25')")  # fmt: skip
    return value


def sampling_problem(name: str) -> str | None:
    """What is wrong with a sampling name (None: it is a preset or an α point): the one check behind a grid's
    refusal and a profile's parameter check, so both accept exactly what :func:`sampling_alpha` can read."""
    try:
        sampling_alpha(name)
    except SamplerConfigError as exc:
        return str(exc)
    return None
