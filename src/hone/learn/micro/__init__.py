"""hone.learn.micro: hone's embedded micro model, trained from scratch (extra `hone[train]`)."""

from ._model import MICRO_CONFIG, micro_config, new_micro_model
from ._template import CHAT_TEMPLATE
from ._tokenizer import MARKUP_TOKENS, SPECIAL_TOKENS, build_tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "MARKUP_TOKENS",
    "MICRO_CONFIG",
    "SPECIAL_TOKENS",
    "build_tokenizer",
    "micro_config",
    "new_micro_model",
]
