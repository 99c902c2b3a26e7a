"""The error of the retrieval toolkit (embeddings, search, TREC files, LAReQA evaluation)."""


class EvaluationError(ValueError):
    """Bad evaluation input or an unreadable cache/run file; the message names it."""
