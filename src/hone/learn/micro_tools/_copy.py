"""The tool-call copy curriculum: short conversations that only copying can complete.

Trained from scratch on toolgen demonstrations, even entity-randomized ones, the model learns
the format and a prior over names and ids but not to look things up in its prompt: after 400
steps it answers a one-tool request with a tool name from its training scenarios and `MM-103`
for every id (0% on held-out tool sets, and on the train split). `micro` hit the same wall with
arithmetic and got past it with a copy curriculum first (`hone.learn.micro._copy`). These records
do that for tool calls: random tools (names, parameters and enum values recombined from the
training scenarios' words, or made of random letters) in the template's `<tools>` block, a
request for one or two of them (by name in words, by their description, or, with one tool
offered, without saying which) with random values, and the calls that copy the tool name from
the documents and the values from the request, then a random result copied into the answer. No
system prompt, so a record is shorter than a demonstration.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Sequence
from typing import Any

FRAMES = (
    "{name}: {args}.",
    "Please {name} with {args}.",
    "{name} ({args})",
    "Can you {name}? {args}.",
    "I need to {name}, {args}.",
)
JOINS = (" and ", ", ", "; ")
BARE_FRAMES = ("{args}.", "Please, {args}.", "Do it with {args}.", "{args}, thanks.")
READS = ("Get the {}.", "Compute the {}.", "Count the {}.", "Find the {} and return its ID.")
WRITES = ("Change the {}.", "Set the {}.", "Create a new {}.", "Add the {}.")
"""Description frames. Every record closes `Answer: <last result>`, as `canonical_closing` makes toolgen's
demonstrations do for reads and writes alike."""
OWN_WORDS = 0.3
"""Share of tools described in words other than their name's: the request then cannot spell the name."""
ASK_BY_DESCRIPTION = 0.45
ASK_BY_NOTHING = 0.5
"""Shares of requests that paraphrase the tool's description, or (one tool offered) do not say which tool: a
name copied from the request (the first version always spelled it there) never has to be looked up in
`<tools>`, and on held-out tool sets the model then assembled names from familiar pieces."""
TOOLGEN_PHRASING = 0.5
"""Share of the other requests worded by toolgen's own phrasing (`envs.build._template.phrase`: openers, and
argument clauses like "(artwork id: AW-110)", "with the van ID set to VN-108", "where the plot id is PL-107"):
the plain "name p v, p v" frames left the model copying the wrong key's value on toolgen's held-out requests (6
of 20 `single` tasks, run J)."""


OFFERED = (1, 1, 2, 3, 4, 5)
"""How many tools a record offers (drawn uniformly from this tuple): toolgen's `choice` tasks offer 3-5, and
records of 1-3 tools left choosing among 4-5 unpractised (1 of 10 held-out `choice` tasks solved, run G)."""

RANDOM_WORDS = 0.3
"""Share of words made of random letters (the rest are drawn from `words`, the training scenarios' own)."""


def _word(rng: random.Random, words: Sequence[str] = ()) -> str:
    if words and rng.random() >= RANDOM_WORDS:
        return rng.choice(words)
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 6)))


def _value(rng: random.Random, kind: str, enum: list[str] | None) -> Any:
    if enum:
        return rng.choice(enum)
    if kind == "integer":
        return rng.randint(0, 999)
    style = rng.random()
    if style < 0.5:  # an id like those of toolgen's scenarios
        letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(1, 2)))
        return f"{letters}-{rng.randint(100, 999)}"
    if style < 0.75:  # a name
        return " ".join(_word(rng).capitalize() for _ in range(rng.randint(1, 2)))
    return _word(rng)


def _tool(rng: random.Random, words: Sequence[str]) -> dict[str, Any]:
    parts = [_word(rng, words) for _ in range(rng.randint(2, 3))]
    props: dict[str, Any] = {}
    for _ in range(rng.randint(1, 2)):
        pname = "_".join(_word(rng, words) for _ in range(rng.randint(1, 2)))
        kind = rng.choice(("string", "string", "integer", "enum"))
        if kind == "enum":
            props[pname] = {
                "type": "string",
                "enum": [_word(rng, words) for _ in range(3)],
                "description": "One of them.",
            }
        else:
            props[pname] = {"type": kind, "description": f"The {pname.replace('_', ' ')}."}
    read = rng.random() < 0.6
    # 30% described in other words than the name, like `copay` ("what a patient pays").
    described = [_word(rng, words) for _ in range(rng.randint(2, 4))] if rng.random() < OWN_WORDS else parts
    return {
        "type": "function",
        "function": {
            "name": "_".join(parts),
            "description": rng.choice(READS if read else WRITES).format(" ".join(described)),
            "parameters": {"type": "object", "properties": props, "required": list(props)},
        },
    }


def _request(rng: random.Random, tool: dict[str, Any], alone: bool) -> tuple[str, dict[str, Any]]:
    fn = tool["function"]
    args = {p: _value(rng, spec["type"], spec.get("enum")) for p, spec in fn["parameters"]["properties"].items()}
    said = list(args.items())
    rng.shuffle(said)
    text = rng.choice(JOINS).join(f"{p.replace('_', ' ')} {v}" for p, v in said)
    roll = rng.random()
    if not (alone and ASK_BY_DESCRIPTION <= roll < ASK_BY_DESCRIPTION + ASK_BY_NOTHING) and (
        rng.random() < TOOLGEN_PHRASING
    ):
        from hone.envs.build._spec import ToolDoc
        from hone.envs.build._template import phrase

        doc = ToolDoc(name=fn["name"], description=fn["description"], parameters=fn["parameters"])
        return phrase(doc, args, rng)[0], args
    if roll < ASK_BY_DESCRIPTION:  # toolgen's requests mostly paraphrase the description
        how = fn["description"].rstrip(".")
        how = how[0].lower() + how[1:]
    elif roll < ASK_BY_DESCRIPTION + ASK_BY_NOTHING and alone:  # one tool: the request need not say which
        return rng.choice(BARE_FRAMES).format(args=text), args
    else:
        how = fn["name"].replace("_", " ")
    return rng.choice(FRAMES).format(name=how, args=text), args


ECHO = [
    {
        "type": "function",
        "function": {
            "name": "echo",
            "description": "Repeat a text.",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        },
    }
]
PUNCTUATION = "-_.,:/#()"


def _piece(rng: random.Random, words: Sequence[str]) -> str:
    roll = rng.random()
    if roll < 0.35:
        letters = string.ascii_letters if rng.random() < 0.3 else string.ascii_lowercase
        return "".join(rng.choice(letters) for _ in range(rng.randint(1, 6)))
    if roll < 0.6 and words:
        return rng.choice(words)
    if roll < 0.85:
        return "".join(rng.choice(string.digits) for _ in range(rng.randint(1, 4)))
    return rng.choice(PUNCTUATION)


def _random_text(rng: random.Random, words: Sequence[str], low: int = 2, high: int = 8) -> str:
    n = rng.randint(low, high)
    out = ""
    for i in range(n):
        piece = _piece(rng, words)
        while (i == 0 or i == n - 1) and piece in PUNCTUATION:
            # Punctuation at either end merges with the JSON quote around the value (`."}}` is one
            # pre-token), so the call's tokens would differ from the request's: not a copy.
            piece = _piece(rng, words)
        out += ("" if i == 0 or rng.random() < 0.3 else " ") + piece
    return out


def string_copy_records(n: int, seed: int = 0, words: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Stage one: `Repeat: S` answered by `echo(text=S)` for a random `S`, then a random result `R`
    copied into `Answer: R` (half of them). `S` and `R` mix random letters, `words`, digits and
    punctuation, so every kind of token gets copied: a first version copied only micro's arithmetic
    alphabet, and the model then copied digits but not a single letter token (per-token losses of
    4-7 nats on names and values, ~0.1 on digits). On plain copies the induction circuit forms
    within a few hundred steps (loss 1.1 -> 0.25 between steps 180 and 300 of 16), while on
    `tool_copy_records` alone it had not formed after 500 steps of 8 (loss 2.1)."""
    rng = random.Random(f"hone-micro-tools-string-copy-{seed}")
    tools = json.dumps(ECHO)
    out = []
    for i in range(n):
        text = _random_text(rng, words)
        call = {"id": "c0", "type": "function", "function": {"name": "echo", "arguments": json.dumps({"text": text})}}
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": f"Repeat: {text}"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ]
        if i % 2:
            result = _random_text(rng, words, 1, 3)
            messages += [
                {"role": "tool", "content": result, "tool_call_id": "c0"},
                {"role": "assistant", "content": f"Answer: {result}"},
            ]
        out.append({"messages": messages, "tools": tools})
    return out


def tool_copy_records(n: int, seed: int = 0, words: Sequence[str] = ()) -> list[dict[str, Any]]:
    """`n` conversational records (`messages` with call arguments as JSON text, `tools` as JSON text).

    Each offers 1-5 random tools (`OFFERED`) (names and parameters of `words`, e.g. the training scenarios' name
    parts, recombined, and 30% words of random letters); the request asks for one (a third of the time
    two, answered by parallel calls) by name, by description or (one tool) not at all, with random
    values; the reply calls it with exactly those values, the tools answer with random results, and
    the last turn copies the last one (`Answer: R`).
    """
    rng = random.Random(f"hone-micro-tools-copy-{seed}")
    return [_record(rng, words, rng.choice(OFFERED), pair=0.33) for _ in range(n)]


CHOICE_OFFERED = (2, 3, 4, 5)


def choice_copy_records(n: int, seed: int = 0, words: Sequence[str] = ()) -> list[dict[str, Any]]:
    """An optional stage: records like `tool_copy_records` that all offer 2-5 tools (`CHOICE_OFFERED`) and ask for
    exactly one of them, so the tool's name is decided by the request in every record.

    Why a stage of its own: after `tool_copy_records` and the demonstrations, run M ranked the requested tool
    first (teacher-forced) on 11 of 55 five-tool copy records and 9 of 40 held-out `choice` tasks, chance both
    times, and 300 more steps of 8 on `tool_copy_records` did not move it. In those records the name is one or two
    tokens among ~40 supervised ones, and a third of them offer one tool. 300 steps of 16 of one-call records
    with 2-5 tools took the same checkpoint to 33 of 55 and 16 of 40. As a stage of a full run (O: 250 steps of
    16 between the tool-call copies and the demonstrations) it did not carry over: held-out `choice` 15%, 8 of 40
    teacher-forced, so `train_micro_tools` runs it only when asked (`choice_copy_steps`)."""
    rng = random.Random(f"hone-micro-tools-choice-copy-{seed}")
    return [_record(rng, words, rng.choice(CHOICE_OFFERED), pair=0.0) for _ in range(n)]


def _record(rng: random.Random, words: Sequence[str], want: int, pair: float) -> dict[str, Any]:
    """One copy record offering `want` tools; it asks for two of them with probability `pair`."""
    tools: list[dict[str, Any]] = []
    while len(tools) < want:
        tool = _tool(rng, words)
        if all(t["function"]["name"] != tool["function"]["name"] for t in tools):  # a tool set names each once
            tools.append(tool)
    targets = rng.sample(tools, 2 if len(tools) > 1 and rng.random() < pair else 1)
    asks, calls = [], []
    for i, tool in enumerate(targets):
        text, args = _request(rng, tool, alone=len(tools) == 1)
        asks.append(text)
        calls.append(
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": tool["function"]["name"], "arguments": json.dumps(args, ensure_ascii=False)},
            }
        )
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": " Also, ".join(asks)},
        {"role": "assistant", "content": None, "tool_calls": calls},
    ]
    results = [rng.choice((str(rng.randint(0, 9999)), json.dumps(_value(rng, "string", None)))) for _ in calls]
    messages += [{"role": "tool", "content": r, "tool_call_id": c["id"]} for r, c in zip(results, calls, strict=True)]
    answer = results[-1].strip('"')
    messages.append({"role": "assistant", "content": f"Answer: {answer}"})
    return {"messages": messages, "tools": json.dumps(tools, ensure_ascii=False)}
