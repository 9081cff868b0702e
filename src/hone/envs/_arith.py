"""`arith`: procedurally generated arithmetic in five levels, solved with a calculator tool.

Every task is a pure function of (split, seed, level, index), so its id is enough to rebuild
it (grading a stored trajectory needs no task list). Splits are disjoint by construction:
each expression text belongs to exactly one split (a stable hash of the text decides), and
generation for a split retries until it draws a text that split owns.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hone.core import ConfigError, GradeError, Message, Task, Trajectory, run_sync, stable_int, validate_options

from ._calculator import evaluate_expression
from ._demos import DIRECT_ACCURACY, calculator_plan, check_mix, pick_style, record_demonstration
from ._options import Tools, ToolSpec, build_tools
from ._toolenv import ToolEnv

SPLITS = ("train", "test", "heldout")
LEVELS = (1, 2, 3, 4, 5)

# Short on purpose: the embedded micro model reads prompts character by character.
SYSTEM_PROMPT = 'Use the calculator tool for the arithmetic, then reply "The answer is N."'
SYSTEM_PROMPT_NO_TOOLS = 'Solve the problem and reply "The answer is N."'
SYSTEM_PROMPT_PYTHON = 'Use the python tool to compute it (print the result), then reply "The answer is N."'
SYSTEM_PROMPT_BOTH = 'Use the calculator or python tool for the arithmetic, then reply "The answer is N."'

_ID = re.compile(r"^arith-(?P<split>[a-z]+)(?:-s(?P<seed>-?\d+))?-L(?P<level>\d)-(?P<index>\d+)$")
_NAMES = ("Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Luca", "Maya")
_MAX_ATTEMPTS = 10_000


@dataclass(frozen=True)
class _Level:
    operands: tuple[int, int]
    numbers: tuple[int, int]
    ops: str
    max_abs: int
    negatives: bool  # may intermediate and final values be negative?
    need_ops: str = ""  # operators the expression must use
    min_depth: int = 0  # parenthesis nesting the text must reach
    max_depth: int = 99  # parenthesis nesting the text may reach
    word_share: float = 0.0  # share of word problems


_SPECS = {
    1: _Level((2, 2), (1, 50), "+-", 10**3, negatives=False),
    2: _Level((3, 3), (10, 99), "+-*", 10**5, negatives=False, need_ops="*", max_depth=0),
    3: _Level((4, 4), (10, 400), "+-*/", 10**6, negatives=False, need_ops="/", min_depth=1),
    4: _Level((5, 6), (100, 999), "+-*/", 10**8, negatives=True, min_depth=2, word_share=0.5),
    5: _Level((7, 9), (10, 9999), "+-*/", 10**12, negatives=True, need_ops="/", min_depth=2, word_share=0.5),
}
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class _Node:
    value: int
    text: str
    prec: int  # 3 for a number
    op: str
    operands: int
    lowest: int  # smallest value anywhere in the tree
    largest: int  # largest magnitude anywhere in the tree


def _leaf(value: int) -> _Node:
    return _Node(value, str(value), 3, "", 1, value, abs(value))


def _combine(op: str, left: _Node, right: _Node) -> _Node:
    prec = _PREC[op]
    ltext = f"({left.text})" if left.prec < prec else left.text
    wrap_right = right.prec < prec or (right.prec == prec and (op in "-/" or right.op != op))
    rtext = f"({right.text})" if wrap_right else right.text
    if op == "+":
        value = left.value + right.value
    elif op == "-":
        value = left.value - right.value
    elif op == "*":
        value = left.value * right.value
    else:
        value = left.value // right.value  # callers only divide exactly
    return _Node(
        value,
        f"{ltext} {op} {rtext}",
        prec,
        op,
        left.operands + right.operands,
        min(left.lowest, right.lowest, value),
        max(left.largest, right.largest, abs(value)),
    )


def _tree(rng: random.Random, operands: int, spec: _Level) -> _Node:
    if operands == 1:
        return _leaf(rng.randint(*spec.numbers))
    op = rng.choice(spec.ops)
    if op == "/":
        # The divisor is a number that divides the left side exactly, so the result stays an integer.
        left = _tree(rng, operands - 1, spec)
        top = min(abs(left.value) - 1, 99)
        divisors = [d for d in range(2, top + 1) if left.value % d == 0]
        if divisors:
            return _combine("/", left, _leaf(rng.choice(divisors)))
        op = rng.choice(spec.ops.replace("/", ""))
    k = rng.randint(1, operands - 1)
    return _combine(op, _tree(rng, k, spec), _tree(rng, operands - k, spec))


def _depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        best = max(best, depth)
    return best


def _expression(rng: random.Random, spec: _Level) -> tuple[str, int] | None:
    node = _tree(rng, rng.randint(*spec.operands), spec)
    ok = (
        node.largest <= spec.max_abs
        and (spec.negatives or node.lowest >= 0)
        and all(op in node.text for op in spec.need_ops)
        and spec.min_depth <= _depth(node.text) <= spec.max_depth
    )
    return (node.text, node.value) if ok else None


# --- word problems: each returns (text, formula); the target is the formula's exact value ---


def _w_change(r: random.Random, name: str) -> tuple[str, str]:
    n, p = r.randint(3, 12), r.randint(4, 45)
    bill = r.choice((20, 50, 100))
    bills = n * p // bill + r.randint(1, 2)
    item = r.choice(("notebooks", "mugs", "plants", "tickets", "scarves"))
    paid = f"a ${bill} bill" if bills == 1 else f"{bills} ${bill} bills"
    text = (
        f"{name} buys {n} {item} that cost ${p} each and pays with {paid}. "
        f"How much change, in dollars, does {name} get?"
    )
    return text, f"{bills} * {bill} - {n} * {p}"


def _w_travel(r: random.Random, name: str) -> tuple[str, str]:
    h1, s1, h2, s2 = r.randint(2, 6), r.randint(40, 120), r.randint(2, 5), r.randint(30, 110)
    text = (
        f"{name} drives for {h1} hours at {s1} km per hour, then for {h2} hours at {s2} km per hour. "
        "How many kilometres does the trip cover in total?"
    )
    return text, f"{h1} * {s1} + {h2} * {s2}"


def _w_share(r: random.Random, name: str) -> tuple[str, str]:
    k, q, c = r.randint(3, 9), r.randint(12, 60), r.randint(5, 12)
    b = r.randint(1, (k * q - 1) // c)
    a = k * q - b * c
    text = (
        f"{name} has {a} stickers and buys {b} packs with {c} stickers in each. "
        f"{name} shares all the stickers equally among {k} friends. How many stickers does each friend get?"
    )
    return text, f"({a} + {b} * {c}) / {k}"


def _w_savings(r: random.Random, name: str) -> tuple[str, str]:
    a, w = r.randint(8, 75), r.randint(4, 30)
    s = r.randint(1, a * w - 1)
    text = f"{name} saves ${a} every week for {w} weeks, then spends ${s} on a bike. How many dollars are left?"
    return text, f"{a} * {w} - {s}"


def _w_bakery(r: random.Random, name: str) -> tuple[str, str]:
    t, c, d = r.randint(3, 12), r.randint(6, 24), r.randint(4, 12)
    b = (t * c) % d + d * r.randint(0, 2) or d
    text = (
        f"{name}'s bakery bakes {t} trays of {c} muffins. {b} muffins are burnt and thrown away, and the rest "
        f"are packed in boxes of {d}. How many boxes are filled?"
    )
    return text, f"({t} * {c} - {b}) / {d}"


def _w_group_shop(r: random.Random, name: str) -> tuple[str, str]:
    a, p, b, q, k = r.randint(2, 6), r.randint(12, 40), r.randint(1, 4), r.randint(25, 80), r.randint(2, 6)
    total = a * p + b * q
    c = total % k + k * r.randint(1, max(1, total // (3 * k)))
    text = (
        f"{name} buys {a} shirts at ${p} each and {b} pairs of jeans at ${q} each. A coupon takes ${c} off the "
        f"total. {name} and {k - 1} friends split what is left equally. How many dollars does each person pay?"
    )
    return text, f"({a} * {p} + {b} * {q} - {c}) / {k}"


def _w_cyclist(r: random.Random, name: str) -> tuple[str, str]:
    d, m = r.randint(12, 60), r.randint(2, 4)
    e = r.randint(1, m * d - 1)
    text = (
        f"On Monday {name} cycles {d} km. On Tuesday {name} cycles {m} times as far as on Monday, and on "
        f"Wednesday {e} km less than on Tuesday. How many kilometres does {name} cycle over the three days?"
    )
    return text, f"{d} + {m} * {d} + ({m} * {d} - {e})"


def _w_factory(r: random.Random, name: str) -> tuple[str, str]:
    k, p, x, h, days = r.randint(4, 10), r.randint(2, 6), r.randint(1, 5), r.randint(6, 10), r.randint(3, 7)
    rate = k * p * x
    text = (
        f"{name}'s workshop makes {rate} toys an hour and runs {h} hours a day for {days} days. One in every "
        f"{k} toys fails inspection; the good toys are packed {p} to a box. How many boxes are filled?"
    )
    return text, f"({rate} * {h} * {days} - {rate} * {h} * {days} / {k}) / {p}"


def _w_wages(r: random.Random, name: str) -> tuple[str, str]:
    w, h, n = r.randint(12, 35), r.randint(15, 40), r.randint(3, 12)
    rent = r.randint(w * h // 4, w * h // 2)
    food = r.randint(20, max(21, w * h - rent - 1))
    text = (
        f"{name} earns ${w} an hour and works {h} hours a week. Each week ${rent} goes to rent and ${food} "
        f"to food. How many dollars does {name} save in {n} weeks?"
    )
    return text, f"({w} * {h} - {rent} - {food}) * {n}"


def _w_fundraiser(r: random.Random, name: str) -> tuple[str, str]:
    k, q = r.randint(3, 8), r.randint(40, 200)
    a = r.randint(k * q // 2, k * q)
    b = r.randint(k * q - a + 5, k * q)
    c, e = a + b - k * q, r.randint(5, q - 1)
    text = (
        f"{name}'s school raises ${a} at a bake sale and ${b} at a car wash. It spends ${c} on a trip and "
        f"shares the rest equally among {k} classes. Each class then spends ${e} on books. "
        "How many dollars does each class have left?"
    )
    return text, f"({a} + {b} - {c}) / {k} - {e}"


_WORD = {
    4: (_w_change, _w_travel, _w_share, _w_savings, _w_bakery),
    5: (_w_group_shop, _w_cyclist, _w_factory, _w_wages, _w_fundraiser),
}


def _word(rng: random.Random, level: int) -> tuple[str, int, str] | None:
    text, formula = rng.choice(_WORD[level])(rng, rng.choice(_NAMES))
    value = evaluate_expression(formula)
    return (text, value, formula) if isinstance(value, int) and value > 0 else None


def owner(text: str) -> str:
    """The split that owns a problem text (splits never share a problem)."""
    return SPLITS[stable_int("arith-split", text) % len(SPLITS)]


def task_id(split: str, level: int, index: int, seed: int = 0) -> str:
    """`arith-test-L3-0042`; a non-zero seed adds `-s<seed>` after the split."""
    seed_part = f"-s{seed}" if seed else ""
    return f"arith-{split}{seed_part}-L{level}-{index:04d}"


def make_task(split: str, level: int, index: int, seed: int = 0) -> Task:
    """The task at (`split`, `level`, `index`, `seed`): always the same, on any machine."""
    if split not in SPLITS:
        raise ConfigError(f"arith: unknown split {split!r}; splits: {', '.join(SPLITS)}")
    if level not in _SPECS:
        raise ConfigError(f"arith: unknown level {level!r}; levels: 1-5")
    text, target, formula = _draw(split, level, index, seed)
    word = formula != text
    meta = {"level": level, "subset": f"L{level}", "kind": "word" if word else "expression"}
    meta |= {"split": split, "seed": seed, "index": index}
    inputs = {"question": text} if word else {"question": f"Compute: {text}", "expression": text}
    return Task(id=task_id(split, level, index, seed), input=inputs, target=target, meta=meta)


def _draw(split: str, level: int, index: int, seed: int) -> tuple[str, int, str]:
    """(problem text, target, formula): the formula is the text itself for a pure expression."""
    spec = _SPECS[level]
    for attempt in range(_MAX_ATTEMPTS):
        rng = random.Random(stable_int("arith", split, seed, level, index, attempt))
        if rng.random() < spec.word_share:
            drawn = _word(rng, level)
        else:
            expression = _expression(rng, spec)
            drawn = None if expression is None else (*expression, expression[0])
        if drawn is not None and owner(drawn[0]) == split:
            return drawn
    raise RuntimeError(f"arith: no task found for {split}/L{level}/{index}")  # pragma: no cover


def solution_expression(task: Task) -> str:
    """The calculator expression that solves an arith `task`.

    For `Compute:` tasks this is the expression as shown; for word problems it is the hidden
    formula the target was computed from, rebuilt from the task's (split, level, index, seed)
    so the formula never has to be stored in the task (whose contents tests pin).
    """
    if "expression" in task.input:
        return str(task.input["expression"])
    meta = task.meta
    text, _, formula = _draw(str(meta["split"]), int(meta["level"]), int(meta["index"]), int(meta["seed"]))
    if text != task.input.get("question"):
        raise ConfigError(f"arith: task {task.id!r} does not match its generator; cannot rebuild its formula")
    return formula


LevelSpec = str | int | Sequence[int | str]
"""Levels as `"1-5"`, `"3"`, `"L3"`, `"2,4"`, `3` or `[3, 4]`."""


def _levels(value: Any) -> list[int]:
    """A `LevelSpec` as a sorted list of levels; `ValueError` (one line) otherwise."""
    items: list[str] = [str(value)] if isinstance(value, int | str) else [str(v) for v in value]
    out: set[int] = set()
    try:
        for item in (part.strip().upper().removeprefix("L") for it in items for part in it.split(",")):
            if not item:
                continue
            low, sep, high = item.partition("-")
            out.update(range(int(low), int(high.strip().removeprefix("L")) + 1) if sep else [int(low)])
    except ValueError:
        raise ValueError("levels: use e.g. 3, 1-5 or 2,4") from None
    if not out or not out <= set(LEVELS):
        raise ValueError("levels are 1 to 5")
    return sorted(out)


class ArithOptions(BaseModel):
    """`arith`'s options (`-e KEY=VALUE`)."""

    model_config = ConfigDict(extra="forbid")

    levels: Annotated[list[int], BeforeValidator(_levels)] = Field(default=list(LEVELS), description="Levels drawn.")
    tools: Tools = Field(default=("calculator",), description="Built-in tools, or none.")
    n_per_level: int = Field(default=50, ge=1, description="Tasks per level when `tasks` gets no `n`.")


class Arith(ToolEnv):
    """Procedurally generated arithmetic in levels 1-5 (word problems at 4-5), with a calculator tool.

    Options: `levels` ("1-5" default, "3", "2,4" or a list), `tools` ("calculator" default,
    "python" (a sandboxed interpreter, fresh per call), "python-session" (one interpreter per
    episode), a list such as "calculator,python", or "none"), `n_per_level` (tasks per level
    when `tasks` gets no `n`; default 50).
    `tasks(split, n=..., seed=...)` cycles through the levels evenly. Splits: train, test,
    heldout. Task ids look like `arith-test-L3-0042`.
    """

    name = "arith"
    version = "1"
    Options: ClassVar[type[ArithOptions]] = ArithOptions
    # Exact: targets are integers, and a relative tolerance would pass an off-by-one on big numbers.
    grade_rel_tol = 0.0
    grade_abs_tol = 1e-9

    def __init__(
        self,
        levels: LevelSpec = "1-5",
        tools: ToolSpec = "calculator",
        n_per_level: int = 50,
    ) -> None:
        opts = validate_options(ArithOptions, {"levels": levels, "tools": tools, "n_per_level": n_per_level}, "arith")
        super().__init__(build_tools(opts.tools))
        self.levels = opts.levels
        self.n_per_level = opts.n_per_level

    def splits(self) -> list[str]:
        return list(SPLITS)

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        count = self.n_per_level * len(self.levels) if n is None else n
        next_index = dict.fromkeys(self.levels, 0)
        seen: set[str] = set()
        out: list[Task] = []
        for i in range(count):
            level = self.levels[i % len(self.levels)]
            while True:  # skip a problem already drawn for this list (rare, mostly at level 1)
                task = make_task(split, level, next_index[level], seed)
                next_index[level] += 1
                if task.input["question"] not in seen:
                    break
            seen.add(task.input["question"])
            out.append(task)
        return out

    def prompt(self, task: Task) -> list[Message]:
        names = {t.name for t in self.tools}
        if not names:
            system = SYSTEM_PROMPT_NO_TOOLS
        elif "python" not in names:
            system = SYSTEM_PROMPT  # the micro model was trained on exactly this text
        else:
            system = SYSTEM_PROMPT_BOTH if "calculator" in names else SYSTEM_PROMPT_PYTHON
        return [Message.system(system), Message.user(str(task.input["question"]))]

    def find_task(self, task_id: str) -> Task:
        """Rebuild the task from its id (`arith-<split>[-s<seed>]-L<level>-<index>`)."""
        if self._task is not None and self._task.id == task_id:
            return self._task
        match = _ID.match(task_id)
        if match is None or match["split"] not in SPLITS or int(match["level"]) not in _SPECS:
            raise GradeError(f"arith: not an arith task id: {task_id!r}")
        seed = int(match["seed"] or 0)
        return make_task(match["split"], int(match["level"]), int(match["index"]), seed)

    # --- demonstrations (the `Demonstrator` protocol) ------------------------------------------

    def demonstrations(
        self, n: int, *, seed: int = 0, split: str = "train", mix: Mapping[str, float] | None = None
    ) -> list[Trajectory]:
        """`n` graded demonstration trajectories on `tasks(split, n=n, seed=seed)`; see `ademonstrations`.

        Safe to call from async code too (it then runs on a private loop in a worker thread,
        blocking the caller): prefer `await ademonstrations(...)` there.
        """
        return run_sync(self.ademonstrations(n, seed=seed, split=split, mix=mix))

    async def ademonstrations(
        self, n: int, *, seed: int = 0, split: str = "train", mix: Mapping[str, float] | None = None
    ) -> list[Trajectory]:
        """`n` demonstrations, one per task of `tasks(split, n=n, seed=seed)`, each a graded `Trajectory`.

        Each is recorded by playing scripted assistant turns through a real episode of this
        environment, in a style drawn from `mix` (default `DEMONSTRATION_MIX`): `tool` (the
        calculator on the task's expression or a word problem's hidden formula, then the
        answer), `direct` (an answer without the tool, right with `DIRECT_ACCURACY[level]`,
        else a plausible slip) or `clumsy` (a malformed call or a split into two calls, then
        the right answer). `meta["style"]` names the style. Deterministic for a given `seed`
        and `split` (apart from trajectory ids and timestamps); a list for a smaller `n` is a
        prefix of the list for a larger one. Needs the calculator tool.
        """
        if n < 0:
            raise ConfigError(f"arith: demonstrations n={n} must be at least 0")
        if self.get_tool("calculator") is None:
            raise ConfigError("arith: demonstrations need the calculator tool (tools='calculator')")
        shares = check_mix(mix)
        out: list[Trajectory] = []
        for task in self.tasks(split, n=n, seed=seed):
            # Seeded per task (the id holds split, seed, level and index), so a prefix never changes.
            rng = random.Random(stable_int("arith-demo", task.id))
            style = pick_style(rng, shares)
            accuracy = DIRECT_ACCURACY[int(task.meta["level"])]
            plan = calculator_plan(rng, style, solution_expression(task), direct_accuracy=accuracy)
            out.append(await record_demonstration(self, task, plan, style=style, split=split))
        return out
