"""The micro model: a tiny Llama created from a config, in standard Hugging Face format."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hone.models import MICRO
from hone.models._capabilities import CONFIG_KEY

from ._tokenizer import MAX_LENGTH, VOCAB_SIZE

if TYPE_CHECKING:
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

# About 1.35M parameters: big enough to copy expressions into tool calls reliably,
# small enough to train in minutes on two CPU cores.
MICRO_CONFIG: dict[str, Any] = {
    "hidden_size": 192,
    "intermediate_size": 512,
    "num_hidden_layers": 3,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "max_position_embeddings": MAX_LENGTH,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "vocab_size": VOCAB_SIZE,
}


def micro_config(tokenizer: PreTrainedTokenizerFast, **overrides: Any) -> LlamaConfig:
    """A `LlamaConfig` for the micro model, with the tokenizer's special token ids."""
    from transformers import LlamaConfig

    # Declared in config.json, so every checkpoint (and each copy `hone loop` trains) says what it can do.
    declared: dict[str, Any] = {CONFIG_KEY: MICRO.model_dump(exclude={"context"})}
    values = {**MICRO_CONFIG, **declared, **overrides}
    return LlamaConfig(
        **values,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )


def new_micro_model(tokenizer: PreTrainedTokenizerFast, seed: int = 0, **overrides: Any) -> LlamaForCausalLM:
    """A freshly initialised micro model (`AutoModelForCausalLM.from_config`)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(micro_config(tokenizer, **overrides))  # type: ignore[no-untyped-call]
    return model  # type: ignore[no-any-return]
