"""Wall-clock timings of a pipeline's stages: ``with timed(timings, "encode"): ...`` adds the seconds to a dict."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(timings: dict[str, float], key: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[key]`` (0 when absent), also when it raises."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


def stamped(timings: dict[str, float]) -> dict:
    """``{"timings": ..., "created": ...}`` for a metrics file: seconds to 0.1 ms, creation time in UTC."""
    return {
        "timings": {key: round(v, 4) for key, v in timings.items()},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
