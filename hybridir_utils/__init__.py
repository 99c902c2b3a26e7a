"""hybridir: hybrid batch training and evaluation for multilingual dense retrieval.

Light on purpose: importing the package, or a subpackage's face, loads no torch. Each subpackage's ``__init__``
names its public API in ``__all__`` and imports a name's module on first use (:func:`lazy_face`), so checking a
profile or judging the paper's claims stays quick while ``from hybridir_utils.training import train`` still works.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__version__ = "0.1.0"


def lazy_face(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a subpackage face (PEP 562): ``exports`` maps each public name to the module
    of the subpackage that defines it (a name equal to its module is the module itself)."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{exports[name]}")
        return module if exports[name] == name else getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
