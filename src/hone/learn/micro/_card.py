"""The micro checkpoint's model card (`README.md`), written from its training log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    """`values` as a row of block characters (resampled to at most `width`), low to high."""
    if not values:
        return ""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_BARS[min(len(_BARS) - 1, int((v - low) / span * len(_BARS)))] for v in values)


def _copy_lines(args: dict[str, Any]) -> list[str]:
    steps, mix = args.get("copy_steps") or 0, args.get("copy_mix") or 0
    if not steps and not mix:
        return []
    final = args.get("copy_final_loss")
    done = f" (final loss {final:.4f})" if final is not None else ""
    return [
        f"- Copy curriculum first: {steps} steps of 16 short conversations whose only content is copying a random "
        f"string into a calculator call and a random tool result into the answer{done}; {mix:,} more of them are "
        "mixed into the demonstrations so the copying is kept.",
    ]


def _loss_rows(losses: list[dict[str, Any]], rows: int = 10) -> list[dict[str, Any]]:
    if len(losses) <= rows:
        return losses
    picks = sorted({round(i * (len(losses) - 1) / (rows - 1)) for i in range(rows)})
    return [losses[i] for i in picks]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_card(log: dict[str, Any]) -> str:
    """The model card for a checkpoint, from its `training_log.json` contents."""
    args, data, timings = log["args"], log["data"], log["timings"]
    model = args["model"]
    losses: list[dict[str, Any]] = log["losses"]
    env = log["env"]
    styles = ", ".join(f"{k} {_pct(v)}" for k, v in data["styles"].items())
    final = log["final_loss"]
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [hone, tool-use, arithmetic, tiny, character-level]",
        "---",
        "",
        f"# hone micro ({env})",
        "",
        f"hone's embedded default model: a {log['params'] / 1e6:.2f}M-parameter character-level Llama trained",
        f"from scratch on CPU to solve the `{env}` environment with its `calculator` tool. It is what `--model micro`",
        "loads, so hone's whole loop (evaluate, learn from feedback, re-evaluate) runs offline on a laptop. It is",
        "meant to be good but far from perfect: there is room to improve it.",
        "",
        "## Model",
        "",
        f"- `LlamaForCausalLM`, {log['params']:,} parameters: {model['num_hidden_layers']} layers, hidden size "
        f"{model['hidden_size']}, MLP {model['intermediate_size']}, {model['num_attention_heads']} heads, RoPE, "
        f"tied embeddings, context {model['max_position_embeddings']}.",
        f"- Tokenizer: one token per character (printable ASCII), {model['vocab_size']} ids, with single tokens for "
        "`<|im_start|>`, `<|im_end|>` (end of turn, the eos), `<|pad|>`, `<|unk|>`, `<tool_call>`, `</tool_call>`, "
        "`<tools>`, `</tools>`.",
        "- Chat template: `<|im_start|>ROLE\\n...<|im_end|>\\n` turns; tools listed as signatures "
        "(`<tools>calculator(expression)</tools>`) in the system turn; a tool call is "
        '`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`; tool results are `tool` turns. Assistant turns '
        "are wrapped in `{% generation %}` for assistant-only loss.",
        "- Standard Hugging Face format: `AutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained` "
        "load it with no hone code. Generation: greedy, stops at `<|im_end|>`, at most 256 new tokens.",
        "",
        "## Training",
        "",
        f"- Data: {data['demonstrations']:,} demonstrations from `{env}` (split `{data['split']}`, levels 1-5), "
        f"styles: {styles}; {_pct(data['passed'])} of them reach the right answer (direct answers without the tool "
        "are often wrong at higher levels).",
        *_copy_lines(args),
        f"- SFT with TRL `SFTTrainer`, assistant-only loss, no packing: {args['steps']} steps of "
        f"{args['batch_size']} conversations, AdamW lr {args['lr']:g}, {args['schedule']} schedule with "
        f"{_pct(args['warmup_ratio'])} warmup, seed {args['seed']}, {args['threads']} CPU threads.",
        f"- Time: {timings['train_s']:.0f} s training ({log.get('tokens_per_second') or 0:,.0f} tokens/s), "
        f"{timings['total_s']:.0f} s in all with data and evaluation.",
        f"- Final loss: {final:.4f}." if final is not None else "- Final loss: n/a.",
        "",
        f"Loss: `{sparkline([r['loss'] for r in losses])}`",
        "",
        "| step | loss |",
        "|---:|---:|",
        *(f"| {r['step']} | {r['loss']:.4f} |" for r in _loss_rows(losses)),
        "",
    ]
    lines += _eval_section(log.get("eval"), env)
    lines += [
        "## Reproduce",
        "",
        "```",
        f"hone micro train --env {env} --steps {args['steps']} --demos {args['n_demos']} --seed {args['seed']} "
        f"--batch-size {args['batch_size']} --lr {args['lr']:g} --out DIR",
        "```",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in log.get("versions", {}).items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _eval_section(report: dict[str, Any] | None, env: str) -> list[str]:
    if not report:
        return ["## Evaluation", "", "Not evaluated (`--eval-n 0`).", ""]
    lines = [
        "## Evaluation",
        "",
        f"`{env}` {report['split']} split, {report['n']} tasks (levels mixed evenly), temperature 0, `hone eval`'s "
        "default episode limits:",
        "",
        "| subset | accuracy |",
        "|---|---:|",
        *(f"| {level} | {_pct(acc)} |" for level, acc in report["by_level"].items()),
        f"| **all** | **{_pct(report['accuracy'])}** |",
        "",
        f"- Well-formed turns: {_pct(report['well_formed'])} of {report['turns']} (a tool call that parses, or a "
        'plain answer with "The answer is").',
        f"- Episodes that used the calculator: {_pct(report['tool_use'])}; episodes that ended in an error: "
        f"{report['errors']}.",
        f"- Reproduce: `hone eval {env} --model micro -n {report['n']}`.",
        "",
    ]
    return lines


def write_card(path: Path, log: dict[str, Any]) -> None:
    """Write the model card for `log` to `path`."""
    path.write_text(render_card(log), encoding="utf-8")
