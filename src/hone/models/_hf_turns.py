"""The token ids of generated turns, so the next prompt of a conversation extends them exactly.

`HFLocal` renders every prompt from the messages and tokenizes the text. A sampled completion need
not be the tokenizer's own split of its text (`by` `_` `salary` where the tokenizer writes `by_`
`salary`; constrained decoding makes this common), so the re-tokenized history then differs from the
tokens the model generated: the next prompt no longer extends the previous prompt and completion,
and a multi-turn episode cannot be trained token-exact (GRPO refuses it). vLLM-based RL stacks keep
the generated ids for the same reason. Here the prompt and completion ids of each generated message
are kept (by the message object's identity, so two samples that wrote the same text with different
tokens never mix) and reused when the next prompt's text starts with their decoding.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence

from hone.core import Message


class TurnIds:
    """The ids (prompt + completion) behind the last `limit` generated assistant messages."""

    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._by_message: OrderedDict[int, tuple[Message, array[int]]] = OrderedDict()
        self._lock = threading.Lock()
        self.reused = 0
        """Prompts that extended a generated turn's ids (a counter for tests and stats)."""

    def remember(self, message: Message, ids: Sequence[int]) -> None:
        """Record that `message` was generated as the last of `ids` (its prompt's ids, then its own)."""
        with self._lock:
            # Keyed by id(): the entry holds the message itself, so its id cannot be reused while kept.
            self._by_message[id(message)] = (message, array("l", ids))
            while len(self._by_message) > self.limit:
                self._by_message.popitem(last=False)

    def encode(
        self,
        messages: Sequence[Message],
        text: str,
        decode: Callable[[list[int]], str],
        tokenize: Callable[[str], list[int]],
    ) -> list[int] | None:
        """The ids of `text` (the rendered prompt of `messages`) extending the ids behind its last assistant
        message, when that message was generated here and `text` starts with those ids' decoding; else None."""
        last = next((m for m in reversed(messages) if m.role == "assistant"), None)
        if last is None:
            return None
        with self._lock:
            entry = self._by_message.get(id(last))
        if entry is None or entry[0] is not last:
            return None
        ids = list(entry[1])
        head = decode(ids)
        if not text.startswith(head):  # history rendered differently (an edited message): tokenize it all
            return None
        self.reused += 1
        return ids + tokenize(text[len(head) :])
