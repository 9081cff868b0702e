"""The scripted policy of built-environment demonstrations (`_demos`): one task's assistant turns, written from
its verified reference and the observations the environment returns, with at most one mistake (the flaw)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Generator, Mapping, Sequence
from typing import Any, Protocol

from hone.core import TOOL_ERROR_PREFIX, Message, Task, ToolCall

from .._base import StepResult
from ._envkit import answers_match
from ._spec import BuiltTask, Scenario, ToolDoc
from ._verify import render_answer


class DemoEnv(Protocol):
    """What demonstrations need of a `BuiltEnv` (a protocol, so this layer does not import `_env`)."""

    name: str
    version: str

    @property
    def scenarios(self) -> dict[str, Scenario]: ...

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]: ...

    def built_task(self, task_id: str) -> BuiltTask: ...

    def clone(self) -> Any: ...


NO_TOOL_REPLIES = (
    "None of my tools can do that, so I cannot help with it here.",
    "I don't have a tool for this request, sorry.",
    "That is outside what my tools cover, so I won't call any of them.",
)
QUESTIONS = ("Could you tell me the {}?", "Which {} do you mean?", "I need the {} for that. What is it?")
VAGUE = ("Could you give me a bit more detail?", "Sure, can you say a little more first?")
LEADS = ("", "Here is what I found.\n", "I looked it up.\n")
WRITE_REPLIES = ("Done.", "Done. The change is saved.", "All set.")
RESULTS_LEAD = "Done. Results: "
"""How a write's closing reply leads the values its last step read."""

_Planned = tuple[str, dict[str, Any], tuple[int, int] | None]  # name, arguments, the reference call it makes
_Script = Generator[Message, StepResult, None]
_ID = re.compile(r"^[A-Za-z]+-\d+$")


class Player:
    """The scripted policy of one demonstration: a generator of assistant messages that reads each step's result."""

    def __init__(self, env: DemoEnv, task: BuiltTask, rng: random.Random, flaw: str | None) -> None:
        self.task, self.rng, self.flaw = task, rng, flaw
        self.scenarios = env.scenarios
        self.scenario = env.scenarios[task.scenario]
        self.steps: list[list[_Planned]] = [
            [(c.name, dict(c.arguments), (s, i)) for i, c in enumerate(step)] for s, step in enumerate(task.reference)
        ]
        self.results: dict[tuple[int, int], str] = {}  # what each reference call returned (its observation)
        self.last = ""  # the last observation of a call
        self.count = 0
        self._pending: list[_Planned] = []

    # --- messages -------------------------------------------------------------------------------

    def calls(self, planned: Sequence[_Planned]) -> Message:
        made = []
        for name, arguments, _ in planned:
            raw = json.dumps(arguments, ensure_ascii=False)
            made.append(ToolCall(id=f"call_{self.count}", name=name, arguments=arguments, arguments_raw=raw))
            self.count += 1
        self._pending = list(planned)
        return Message.assistant(None, made)

    def read(self, result: StepResult) -> dict[int, bool]:
        """Keep the observations of the calls just made; returns which of them failed (by position)."""
        failed: dict[int, bool] = {}
        for i, (obs, (_, _, key)) in enumerate(zip(result.observations, self._pending, strict=False)):
            content = obs.text or ""
            failed[i] = obs.error is not None or content.startswith(TOOL_ERROR_PREFIX)
            self.last = content
            if key is not None and not failed[i]:
                self.results[key] = content
        return failed

    def final(self, content: str | None = None, *, wrong: bool = False) -> Message:
        """The closing reply: `Answer: <value>` from the answering call's result for reads, else a short report."""
        task = self.task
        if task.answer is not None:
            last = (len(self.steps) - 1, len(self.steps[-1]) - 1) if self.steps else (0, 0)
            value = _render(self.results.get(last) if content is None else content)
            if wrong and value is not None:
                value = self.wrong_answer(value)
            return Message.assistant(f"{self.rng.choice(LEADS)}Answer: {value if value is not None else 'unknown'}")
        last_step = len(self.steps) - 1
        shown = [
            v
            for key in sorted(self.results)
            if key[0] == last_step and self._is_read(key) and (v := _render(self.results[key]))
        ]
        text = f"{RESULTS_LEAD}{'; '.join(shown)}." if shown else self.rng.choice(WRITE_REPLIES)
        return Message.assistant(text)

    def _is_read(self, key: tuple[int, int]) -> bool:
        return self.doc(self.steps[key[0]][key[1]][0]).effect == "read"

    # --- the script -----------------------------------------------------------------------------

    def script(self) -> _Script:
        """The assistant turns: each `yield` sends one message and receives the environment's `StepResult`."""
        task, flaw = self.task, self.flaw
        if task.level == 6:
            if flaw == "needless_call":
                tool = self.doc(self.rng.choice(task.offered))
                self.read((yield self.calls([(tool.name, self.fill(tool, {}), None)])))
                value = _render(self.last)
                yield Message.assistant(f"Answer: {value}" if value is not None else self.rng.choice(WRITE_REPLIES))
            else:
                yield Message.assistant(self.rng.choice(NO_TOOL_REPLIES))
            return
        if task.level == 5:
            yield from self.ask()
            if flaw == "guessed":
                return
        elif flaw == "distractor_first":
            self.read((yield self.calls([self.distractor(safe=True)])))
        steps = self.steps
        if flaw == "skipped_call":  # one parallel call, or the last step, left out
            steps = [steps[0][:-1]] if task.level == 3 else steps[:-1]
        elif flaw in ("wrong_value", "wrong_tool") and steps:
            steps = [*steps[:-1], self.spoil(steps[-1], flaw)]
        steps = [planned for planned in steps if planned]
        bad_step = self.rng.randrange(len(steps)) if flaw == "bad_argument" and steps else -1
        for s, planned in enumerate(steps):
            if s == bad_step:
                j = self.rng.randrange(len(planned))
                broken = self.break_call(planned[j])
                failed = self.read((yield self.calls([*planned[:j], broken, *planned[j + 1 :]])))
                redo = [p for i, p in enumerate(planned) if i == j or failed.get(i)]
                self.read((yield self.calls(redo)))
            else:
                self.read((yield self.calls(planned)))
        if flaw in ("skipped_call", "wrong_value", "wrong_tool"):
            yield self.final(self.last)
        else:
            yield self.final(wrong=flaw == "wrong_answer")

    def ask(self) -> _Script:
        """Level 5: ask for the missing values (flaws: a vague question first, the call without them first,
        or a guess that the user corrects when the reply names it); then the reference calls."""
        facts = list(self.task.hidden_facts)
        if self.flaw == "guessed":
            guessed = self.guess()
            self.read((yield self.calls(guessed)))
            if self.task.answer is not None:
                yield self.final(self.last)
                return
            # The reply names the argument, so the simulated user answers with the right value.
            named = " and ".join(f"{guessed[0][1].get(f)} as the {f.replace('_', ' ')}" for f in facts)
            yield Message.assistant(f"Done. I used {named}.")
            for planned in self.steps:  # the call again, with the value the user gave
                self.read((yield self.calls(planned)))
            yield self.final()
            return
        if self.flaw == "vague_question":
            result = yield Message.assistant(self.rng.choice(VAGUE))
            facts = _unrevealed(facts, result)
        elif self.flaw == "call_without":
            name, arguments, key = self.steps[0][0]
            self.read((yield self.calls([(name, {k: v for k, v in arguments.items() if k not in facts}, key)])))
        if facts:
            named = " and the ".join(f.replace("_", " ") for f in facts)
            yield Message.assistant(self.rng.choice(QUESTIONS).format(named))

    # --- mistakes -------------------------------------------------------------------------------

    def doc(self, name: str) -> ToolDoc:
        if any(d.name == name for d in self.scenario.tools):
            return self.scenario.tool(name)
        return self.owner(name).tool(name)

    def owner(self, name: str) -> Scenario:
        return next(s for s in self.scenarios.values() if any(d.name == name for d in s.tools))

    def distractor(self, *, safe: bool) -> _Planned:
        """An offered tool the reference does not use (`safe`: one that cannot change the state)."""
        used = {p[0] for step in self.steps for p in step}
        own = {d.name for d in self.scenario.tools}
        names = [n for n in self.task.offered if n not in used]
        if safe:
            names = [n for n in names if n not in own or self.doc(n).effect == "read"]
        if not names:  # nothing to pick: a tool name the model made up, which the env refuses
            name, arguments, _ = self.steps[0][0]
            return f"{name}_v2", arguments, None
        tool = self.doc(self.rng.choice(names))
        return tool.name, self.fill(tool, self.steps[-1][-1][1]), None

    def spoil(self, planned: list[_Planned], flaw: str) -> list[_Planned]:
        """The step with its last call on a distractor (`wrong_tool`) or given another valid value (`wrong_value`)."""
        name, arguments, _ = planned[-1]
        if flaw == "wrong_tool":
            return [*planned[:-1], self.distractor(safe=False)]
        options = [(k, alt) for k in sorted(arguments) if (alt := self.alternative(name, k, arguments[k])) is not None]
        if not options:  # no other valid value: the call is left out instead
            return planned[:-1]
        key, alt = self.rng.choice(options)
        return [*planned[:-1], (name, {**arguments, key: alt}, None)]

    def break_call(self, planned: _Planned) -> _Planned:
        """The call with one argument mistake the environment refuses (see `RECOVERIES`)."""
        name, arguments, _ = planned
        props = self.doc(name).parameters.get("properties") or {}
        required = self.doc(name).parameters.get("required") or []
        # Only mistakes the schema check refuses (the call never runs), or a read's bad id: a write must not run twice.
        options: list[dict[str, Any]] = [{**arguments, _rename("input", props): "all"}] if not arguments else []
        for k in sorted(arguments):
            v = arguments[k]
            options.append({**{a: b for a, b in arguments.items() if a != k}, _rename(k, props): v})
            if k in required:
                options.append({a: b for a, b in arguments.items() if a != k})
            if isinstance(v, int | float) and (props.get(k) or {}).get("type") in ("integer", "number"):
                options.append({**arguments, k: str(v)})
            enum = (props.get(k) or {}).get("enum")
            if isinstance(v, str) and enum and v.upper() not in enum:
                options.append({**arguments, k: v.upper()})
            if isinstance(v, str) and _ID.match(v) and self.doc(name).effect == "read":
                options.append({**arguments, k: v.replace("-", "")})
        return name, self.rng.choice(options), None

    def alternative(self, tool: str, arg: str, value: Any) -> Any:
        """Another value the argument's schema accepts (an enum member, a pool value, a nearby number), or None."""
        prop = (self.doc(tool).parameters.get("properties") or {}).get(arg) or {}
        pool = prop.get("enum") or self.scenario.pools.get(f"{tool}.{arg}") or self.scenario.pools.get(arg) or []
        choices = [v for v in pool if v != value and type(v) is type(value)]
        if choices:
            return self.rng.choice(choices)
        if isinstance(value, int | float) and not isinstance(value, bool):
            deltas = [1, 2, 3, -1, -2]
            self.rng.shuffle(deltas)
            low = prop.get("minimum", 0)
            for delta in deltas:
                if value + delta >= low and (value <= 0 or value + delta > 0):
                    return value + delta
        return None

    def fill(self, tool: ToolDoc, base: Mapping[str, Any]) -> dict[str, Any]:
        """Values for `tool`'s required arguments: `base`'s same-named value, else its pool, enum or a sample."""
        params = tool.parameters.get("properties") or {}
        owner = self.owner(tool.name).pools
        out: dict[str, Any] = {}
        for arg in tool.parameters.get("required") or []:
            prop = params.get(arg) or {}
            pool = prop.get("enum") or owner.get(f"{tool.name}.{arg}") or owner.get(arg)
            if arg in base:
                out[arg] = base[arg]
            elif pool:
                out[arg] = self.rng.choice(pool)
            else:
                out[arg] = {"integer": 1, "number": 1, "boolean": True}.get(str(prop.get("type")), "x")
        return out

    def guess(self) -> list[_Planned]:
        """Level 5's call with a made-up value for each hidden fact (another value of its pool)."""
        name, arguments, _ = self.steps[0][0]
        out = dict(arguments)
        for fact in self.task.hidden_facts:
            alt = self.alternative(name, fact, arguments.get(fact))
            out[fact] = alt if alt is not None else f"my {fact.replace('_', ' ')}"
        return [(name, out, None)]

    def wrong_answer(self, value: str) -> str:
        """A plausible wrong answer: a nearby number, the other boolean, a list short of one item, another value."""
        number = _as_number(value)
        if value in ("true", "false"):
            wrong = "false" if value == "true" else "true"
        elif number is not None:
            delta = self.rng.choice((-3, -2, -1, 1, 2, 10)) * (1 if number.is_integer() else 0.5)
            wrong = _fmt(number + delta if number + delta >= 0 else number + abs(delta))
        elif ", " in value:
            wrong = ", ".join(value.split(", ")[:-1])
        else:
            # Another value of the scenario that looks the same (`SU-105` -> `SU-103`, not `PR-114`).
            pools = {v for vs in self.scenario.pools.values() for v in vs if isinstance(v, str) and v != value}
            alike = sorted(v for v in pools if _shape(v) == _shape(value))
            similar = [v for v in alike if v[:2] == value[:2]] or alike or sorted(pools)
            wrong = self.rng.choice(similar) if similar else "unknown"
        return "unknown" if answers_match(wrong, value) else wrong


def _rename(arg: str, props: Mapping[str, Any]) -> str:
    """A name the model might use for `arg` that the tool does not have: `id`, `productId`, `product`..."""
    head, _, tail = arg.partition("_")
    for name in ("id" if arg.endswith("_id") else "", head + tail.title().replace("_", ""), head, f"{arg}s"):
        if name and name != arg and name not in props:
            return name
    return f"{arg}_value"


def _unrevealed(facts: list[str], result: StepResult) -> list[str]:
    said = " ".join(m.text or "" for m in result.observations if m.role == "user")
    return [f for f in facts if f"The {f.replace('_', ' ')} is " not in said]


def _render(content: str | None) -> str | None:
    if not content or content.startswith(TOOL_ERROR_PREFIX):
        return None
    try:
        return render_answer(json.loads(content))
    except ValueError:
        return None


def _as_number(text: str) -> float | None:
    return float(text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else None


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(round(x, 2))


def _shape(text: str) -> str:
    return re.sub(r"[a-z]+", "a", re.sub(r"[A-Z]+", "A", re.sub(r"\d+", "0", text)))
