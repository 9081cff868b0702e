"""hone: make LLM agents better from feedback."""

__version__ = "0.1.0"
