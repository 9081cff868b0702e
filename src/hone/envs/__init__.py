"""hone.envs: the `Environment` protocol, its registry and the built-in environments."""

from ._base import Environment, Reset, StepResult

__all__ = ["Environment", "Reset", "StepResult"]
