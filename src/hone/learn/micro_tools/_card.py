"""The micro-tools checkpoint's model card (`README.md`), written from its training log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hone.learn.micro._card import _loss_rows, _pct, sparkline


def render_card(log: dict[str, Any]) -> str:
    """The model card for a micro-tools checkpoint, from its `training_log.json` contents."""
    args, data, timings = log["args"], log["data"], log["timings"]
    model = args["model"]
    losses: list[dict[str, Any]] = log["losses"]
    env = log["env"]
    styles = ", ".join(f"{k} {_pct(v)}" for k, v in data["styles"].items())
    final = log["final_loss"]
    dropped = data.get("dropped_too_long")
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-generation",
        "tags: [hone, tool-use, function-calling, tiny, bpe]",
        "---",
        "",
        f"# hone micro-tools{'-base' if args.get('stopped_at') else ''} ({env})",
        "",
        *(
            [
                f"**micro-tools-base**: the run below saved at demonstration step {args['stopped_at']} of "
                f"{args['steps']} (the same schedule, stopped early; the loss table ends there), the start `hone loop` "
                "improves from feedback. The command under Reproduce writes it to `DIR-base`.",
                "",
            ]
            if args.get("stopped_at")
            else []
        ),
        f"hone's embedded tool-using model: a {log['params'] / 1e6:.2f}M-parameter Llama trained from scratch on CPU",
        "to read the tool documents in its prompt and answer with native tool calls (one call, a choice among",
        "tools, parallel calls, short chains; asking for a missing value; declining when no tool fits). It is what",
        "`--model micro-tools` loads (`micro-tools-base`: the same run stopped early, the start `hone loop` improves",
        "from feedback). Tiny and offline by design: far from a real model, with room to improve.",
        "",
        "## Model",
        "",
        f"- `LlamaForCausalLM`, {log['params']:,} parameters: {model['num_hidden_layers']} layers, hidden size "
        f"{model['hidden_size']}, MLP {model['intermediate_size']}, {model['num_attention_heads']} heads, RoPE, "
        f"tied embeddings, context {model['max_position_embeddings']}.",
        f"- Tokenizer: byte-level BPE with {model['vocab_size']} ids trained with `tokenizers` on toolgen's training "
        "text only (held-out tool names exist only as pieces); digits one per token (ids and amounts are copied "
        "digit by digit); single tokens for `<|im_start|>`, `<|im_end|>` (the eos), `<|pad|>`, `<tool_call>`, "
        "`</tool_call>`, `<tools>`, `</tools>`. Why BPE and not characters: a toolgen prompt with its tool "
        "documents is ~240 tokens instead of ~870 characters (3.7x shorter), which is what makes tool documents "
        "affordable for attention and prefill on two cores; 1,024 ids because 2,048 saves only 5-10% more tokens "
        "while doubling the embedding (docs/micro-tools.md has the table).",
        "- Chat template: Hermes/ChatML turns; tool documents inside `<tools>`, a system turn of their own right "
        "after the first request (so a causal model reads them knowing what was asked), each tool's description "
        'before its name, one line per parameter; a call is `<tool_call>{"name": ..., "arguments": {...}}'
        "</tool_call>`; results are `tool` turns; every reply after tool results ends `Answer: <result>`; "
        "assistant turns in `{% generation %}` (assistant-only loss). hone detects it as `hermes`.",
        "- Standard Hugging Face format: `AutoModelForCausalLM` / `AutoTokenizer` load it with no hone code.",
        "",
        "## Training",
        "",
        f"- Data: {data['demonstrations']:,} demonstrations played in `{env}`'s `{data['split']}` split (scenarios "
        f"never held out), styles {styles}; {_pct(data['passed'])} pass the hidden grader. {data['rows']:,} "
        f"training conversations ({args.get('copies', 1)} pass(es)); {_pct(args.get('augment', 0.0))} of them "
        "rewritten by entity randomization: argument values found in the request or a tool result replaced by "
        "random strings of the same shape, and 30% of tool names by random identifiers, everywhere at once, so "
        "copying from the conversation is the only way to predict them (what tools never seen need)."
        + (f" {dropped} conversation(s) longer than {args['max_length']} tokens left out." if dropped else ""),
        f"- Copy curriculum first (`hone.learn.micro_tools._copy`): {args.get('string_copy_steps', 0)} steps of "
        f"16 plain string copies, {args.get('copy_steps', 0)} steps of 8 requests for one or two of 1-5 random "
        f"tools, {args.get('choice_copy_steps', 0)} steps of 16 requests for one of 2-5 random tools (the request "
        f"decides the name every time), and {args.get('copy_mix', 0):,} more such records mixed into the "
        "demonstrations; names, parameters and values are random, so only copying from the documents and the "
        "request completes them.",
        f"- SFT with TRL `SFTTrainer`, assistant-only loss, no packing: {args['steps']} steps of "
        f"{args['batch_size']} conversations, AdamW lr {args['lr']:g} (beta2 0.95), {args['schedule']} schedule "
        f"with {_pct(args['warmup_ratio'])} warmup, seed {args['seed']}, {args['threads']} CPU thread(s).",
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
    lines += _eval_section(log.get("eval"), log.get("eval_constrained"), env)
    lines += [
        "## Reproduce",
        "",
        "```",
        f"hone micro train --env {env} --steps {args['steps']} --demos {args['n_demos']} --seed {args['seed']} "
        f"--batch-size {args['batch_size']} --lr {args['lr']:g} --string-copy-steps {args.get('string_copy_steps', 0)} "
        f"--copy-steps {args.get('copy_steps', 0)} --choice-copy-steps {args.get('choice_copy_steps', 0)} "
        f"--copy-mix {args.get('copy_mix', 0)} --verb-swap {args.get('verb_swap', 0):g}"
        + (f" --base-at {args['base_at']}" if args.get("base_at") else "")
        + " --out DIR",
        "```",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in log.get("versions", {}).items()) + ".",
        "",
    ]
    return "\n".join(lines)


def _eval_section(report: dict[str, Any] | None, constrained: dict[str, Any] | None, env: str) -> list[str]:
    if not report:
        return ["## Evaluation", "", "Not evaluated (`--eval-n 0`).", ""]
    groups = report.get("groups") or {}
    other = constrained or {}

    def row(name: str, free: float, key: str, sub: str | None = None) -> str:
        table = other.get(key) or {}
        value = (table.get(sub) if sub else table) if other else None
        both = f" | {_pct(value)}" if isinstance(value, float) else (" | -" if other else "")
        return f"| {name} | {_pct(free)}{both} |"

    head = "| level | accuracy | constrained tool calls |" if other else "| level | accuracy |"
    return [
        "## Evaluation",
        "",
        f"`{env}` `{report['split']}` split (tool sets never seen in training), {report['n']} tasks, levels mixed "
        "evenly, temperature 0"
        + (
            "; the second column decodes tool calls under the offered tools' grammar (`constrained_tools`: an "
            "offered name, arguments valid for its schema), the first is the model alone:"
            if other
            else ":"
        ),
        "",
        head,
        "|---|---:|---:|" if other else "|---|---:|",
        *(row(level, acc, "by_level", level) for level, acc in report["by_level"].items()),
        *(row(name, acc, "groups", name) for name, acc in groups.items()),
        row("**all**", report["accuracy"], "accuracy"),
        "",
        f"- Well-formed turns: {_pct(report['well_formed'])} of {report['turns']}; episodes with a tool call: "
        f"{_pct(report['tool_use'])}; episodes that ended in an error: {report['errors']}.",
        f"- Reproduce: `hone eval {env} --split {report['split']} --model micro-tools -n {report['n']}`"
        + (" (and `--model 'micro-tools?constrained_tools=true'`)." if other else "."),
        "",
    ]


def write_card(path: Path, log: dict[str, Any]) -> None:
    """Write the model card for `log` to `path`."""
    path.write_text(render_card(log), encoding="utf-8")
