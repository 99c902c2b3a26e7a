"""hybridir: hybrid batch training and evaluation for multilingual dense retrieval."""

__version__ = "0.1.0"
