"""hone.testing: offline stand-ins for model servers (needs the `testing` extra, aiohttp).

`OpenAIServer` is a real HTTP server speaking the OpenAI chat-completions protocol, with
deterministic policies, token ids and logprobs like vLLM, and fault injection.
"""

from ._openai_server import VLLM_PARAMS, OpenAIServer, error_body, token_ids, tokenize
from ._policies import (
    Policy,
    PolicyExhausted,
    arith_policy,
    bfcl_policy,
    code_policy,
    find_expression,
    humaneval_solutions,
    scripted_policy,
    toolenv_policy,
)

__all__ = [
    "VLLM_PARAMS",
    "OpenAIServer",
    "Policy",
    "PolicyExhausted",
    "arith_policy",
    "bfcl_policy",
    "code_policy",
    "error_body",
    "find_expression",
    "humaneval_solutions",
    "scripted_policy",
    "token_ids",
    "tokenize",
    "toolenv_policy",
]
