"""A character-level tokenizer built with `tokenizers`, saved as a standard fast tokenizer."""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

from ._template import CHAT_TEMPLATE

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD, EOS, IM_START, IM_END, UNK = "<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|unk|>"
TOOL_CALL, TOOL_CALL_END, TOOLS, TOOLS_END = "<tool_call>", "</tool_call>", "<tools>", "</tools>"
# Control tokens: dropped by `skip_special_tokens`.
SPECIAL_TOKENS = (PAD, EOS, IM_START, IM_END, UNK)
# Markup the model writes and parsers read: single tokens, but kept when decoding.
MARKUP_TOKENS = (TOOL_CALL, TOOL_CALL_END, TOOLS, TOOLS_END)
# Printable ASCII plus newline and tab; anything else is <|unk|>.
CHARACTERS = tuple(c for c in string.printable if c not in "\r\x0b\x0c")
VOCAB_SIZE = 128  # padded up from the ~108 tokens used, for aligned embedding matrices
MAX_LENGTH = 1024


def vocabulary() -> dict[str, int]:
    tokens = [*SPECIAL_TOKENS, *MARKUP_TOKENS, *CHARACTERS]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    for i in range(len(tokens), VOCAB_SIZE):
        vocab[f"<|reserved_{i}|>"] = i
    return vocab


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The micro model's tokenizer: one token per character, chat template included.

    Saved with `save_pretrained`, it loads with `AutoTokenizer.from_pretrained(path)` and
    no hone code.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(vocab=vocabulary(), unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=MAX_LENGTH,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    return fast
