"""hone.learn.micro: hone's embedded micro model, trained from scratch (extra `hone[train]`)."""

from ._card import render_card
from ._data import sft_dataset, sft_records
from ._model import MICRO_CONFIG, micro_config, new_micro_model
from ._template import CHAT_TEMPLATE
from ._tokenizer import MARKUP_TOKENS, SPECIAL_TOKENS, build_tokenizer
from ._train import EvalReport, TrainResult, evaluate_micro, train_micro

__all__ = [
    "CHAT_TEMPLATE",
    "MARKUP_TOKENS",
    "MICRO_CONFIG",
    "SPECIAL_TOKENS",
    "EvalReport",
    "TrainResult",
    "build_tokenizer",
    "evaluate_micro",
    "micro_config",
    "new_micro_model",
    "render_card",
    "sft_dataset",
    "sft_records",
    "train_micro",
]
