"""hone.envs: the `Environment` protocol, its registry and the built-in environments."""

from hone.core import numbers_match, parse_number

from ._answers import extract_final_answer
from ._arith import Arith
from ._base import Demonstrator, Environment, Reset, StepResult
from ._bfcl import BFCL
from ._calculator import calculate, calculator, evaluate_expression, format_number
from ._demos import DEMONSTRATION_MIX, DIRECT_ACCURACY
from ._docexamples import DocExample, assemble, doc_examples, extract_code
from ._gsm8k import GSM8K
from ._humaneval import HumanEval, load_problems, public_examples
from ._registry import envs, list_envs, make_env
from ._toolenv import ToolEnv, numeric_match
from ._tools import Tool, ToolFailure, tool

__all__ = [
    "BFCL",
    "GSM8K",
    "DocExample",
    "HumanEval",
    "assemble",
    "doc_examples",
    "extract_code",
    "load_problems",
    "public_examples",
    "DEMONSTRATION_MIX",
    "DIRECT_ACCURACY",
    "Arith",
    "Demonstrator",
    "Environment",
    "Reset",
    "StepResult",
    "Tool",
    "ToolEnv",
    "ToolFailure",
    "calculate",
    "calculator",
    "envs",
    "evaluate_expression",
    "extract_final_answer",
    "format_number",
    "list_envs",
    "make_env",
    "numbers_match",
    "numeric_match",
    "parse_number",
    "tool",
]
