"""hone.learn.micro_tools: the micro-tools model: tokenizer, chat template, training (extra `hone[train]`).

A byte-level BPE trained on toolgen text and a compact Hermes/ChatML template that renders tool
documents; design and measurements in docs/micro-tools.md.
"""

from ._corpus import render, task_conversation, toolgen_corpus
from ._template import CHAT_TEMPLATE
from ._tokenizer import MARKUP_TOKENS, MAX_LENGTH, SPECIAL_TOKENS, VOCAB_SIZE, build_tokenizer
from ._train import LEVEL_GROUPS, MICRO_TOOLS_CONFIG, new_micro_tools_model, train_micro_tools

__all__ = [
    "CHAT_TEMPLATE",
    "LEVEL_GROUPS",
    "MARKUP_TOKENS",
    "MAX_LENGTH",
    "MICRO_TOOLS_CONFIG",
    "SPECIAL_TOKENS",
    "VOCAB_SIZE",
    "build_tokenizer",
    "new_micro_tools_model",
    "render",
    "task_conversation",
    "toolgen_corpus",
    "train_micro_tools",
]
