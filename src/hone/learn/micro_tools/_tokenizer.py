"""The micro-tools tokenizer: a byte-level BPE trained locally with `tokenizers` on toolgen text.

Saved with `save_pretrained`, it loads with `AutoTokenizer.from_pretrained(path)` and no hone
code. Any text encodes (bytes are the base alphabet) and decodes back exactly. Design and
measurements: docs/micro-tools.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ._template import CHAT_TEMPLATE

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

PAD, IM_START, IM_END = "<|pad|>", "<|im_start|>", "<|im_end|>"
TOOL_CALL, TOOL_CALL_END, TOOLS, TOOLS_END = "<tool_call>", "</tool_call>", "<tools>", "</tools>"
SPECIAL_TOKENS = (PAD, IM_START, IM_END)
"""Control tokens: ids 0-2, dropped by `skip_special_tokens`."""
MARKUP_TOKENS = (TOOL_CALL, TOOL_CALL_END, TOOLS, TOOLS_END)
"""Markup the model writes and parsers read: single tokens (ids 3-6), kept when decoding."""
VOCAB_SIZE = 1024
"""Chosen in docs/micro-tools.md: toolgen prompts in about 3.7x fewer tokens than characters."""
MAX_LENGTH = 2048

# Every piece is a word, one digit, one `_`, a run of punctuation (spaces between punctuation
# included: `": "`) or whitespace, never a word with the space or `_` before it. GPT-2's split
# writes `TI` as `ĠTI` in a request and as `T`, `I` after a quote in a call, so a copied value or
# name is a different token sequence at each end and a tiny model does not learn to copy it
# (1,600 steps: 0% on held-out tools, docs/micro-tools.md). Here a word, an id and a number are
# the same tokens wherever they occur, and `set_title_list_price` is the words of "set title list
# price" joined by `_`. It costs ~38% more tokens per prompt than GPT-2's split.
PRE_TOKENIZE = r"\p{L}+|\p{N}|_|[^\s\p{L}\p{N}_]+(?: [^\s\p{L}\p{N}_]+)*|\s+"
_ADDED = re.compile("|".join(re.escape(t) for t in (*SPECIAL_TOKENS, *MARKUP_TOKENS)))


def _pieces(texts: Iterable[str]) -> Iterator[str]:
    """The text between added tokens: they are never merged, and nothing learns to spell them."""
    for text in texts:
        yield from (piece for piece in _ADDED.split(text) if piece)


def build_tokenizer(corpus: Iterable[str] | None = None, vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """A byte-level BPE of `vocab_size` tokens trained on `corpus` (default: `toolgen_corpus()`, the
    train split and the documents of scenarios not held out), with the chat template.

    Deterministic: the same corpus (in the same order) and size give an identical `tokenizer.json`.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if corpus is None:
        from ._corpus import toolgen_corpus

        corpus = toolgen_corpus()
    reserved = len(SPECIAL_TOKENS) + len(MARKUP_TOKENS)
    if vocab_size < 256 + reserved:
        raise ValueError(f"vocab_size {vocab_size} is below the 256 bytes and {reserved} reserved tokens")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKENIZE), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[*SPECIAL_TOKENS, *MARKUP_TOKENS],  # ids 0-6, in this order
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_pieces(corpus), trainer=trainer)
    # The trainer adds them all as special; the markup must survive `skip_special_tokens`.
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in MARKUP_TOKENS])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=PAD,
        model_max_length=MAX_LENGTH,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
