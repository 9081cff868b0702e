"""hone.learn.micro_tools: the micro-tools model's tokenizer and chat template (extra `hone[train]`).

A byte-level BPE trained on toolgen text and a compact Hermes/ChatML template that renders tool
documents; design and measurements in docs/micro-tools.md.
"""

from ._corpus import render, task_conversation, toolgen_corpus
from ._template import CHAT_TEMPLATE
from ._tokenizer import MARKUP_TOKENS, MAX_LENGTH, SPECIAL_TOKENS, VOCAB_SIZE, build_tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "MARKUP_TOKENS",
    "MAX_LENGTH",
    "SPECIAL_TOKENS",
    "VOCAB_SIZE",
    "build_tokenizer",
    "render",
    "task_conversation",
    "toolgen_corpus",
]
