"""`bfcl`: the Berkeley Function Calling Leaderboard's single-turn AST categories, graded by BFCL's rules.

The model gets the question and the task's functions as native tools and answers with tool calls
in ONE message; that message ends the episode. Grading (hidden) matches its calls against every
acceptable value of BFCL's `possible_answer` with `hone.feedback._toolmatch` (the official AST
rules; parallel calls in any order). BFCL names with dots (`math.factorial`) are not valid tool
names for most providers: they are offered as `math_factorial` and mapped back before grading.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from hone.core import (
    ConfigError,
    DataError,
    EnvError,
    Feedback,
    GradeError,
    Message,
    Task,
    ToolSpec,
    Trajectory,
    stable_int,
    validate_options,
)
from hone.feedback._toolmatch import CallsVerdict, ExpectedCall, match_calls
from hone.feedback._toolreward import ToolCallScore, score_tool_calls, tool_calls_feedback

from ._base import Reset, StepResult
from ._toolenv import ToolEnv

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple")
"""BFCL's single-turn Python AST categories this environment reads (`category=all` = every one)."""
ENV_VAR = "HONE_BFCL"
"""Environment variable naming the data directory when no `data_dir` option is given."""
DEFAULT_DIR = Path("../shared/data/bfcl")
"""Tried relative to the working directory, then to the project root, when neither option nor variable is set."""
PACKAGED_DIR = Path(__file__).parent / "data" / "bfcl"
"""The copy shipped in the package (the same files, gzipped; Apache-2.0): used when no other directory is found."""

SYSTEM_PROMPT = (
    "Answer the user's request by calling the provided functions. Make every call the request needs "
    "in this one reply (several calls at once when it asks for several things); do not ask questions."
)

_BAD_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]")
# BFCL type names -> JSON Schema (`any` has no JSON Schema type: the key is dropped).
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}

Category = Literal["simple_python", "multiple", "parallel", "parallel_multiple", "all"]


@dataclass(frozen=True)
class Entry:
    """One BFCL question with its functions and ground truth (names as in the data)."""

    id: str
    category: str
    messages: tuple[dict[str, Any], ...]
    functions: tuple[dict[str, Any], ...]
    ground_truth: tuple[dict[str, dict[str, list[Any]]], ...]


def resolve_dir(data_dir: str | Path | None = None) -> Path:
    """The BFCL data directory: `data_dir`, else `$HONE_BFCL`, else `../shared/data/bfcl` (cwd, then project),
    else the copy shipped in the package."""
    if data_dir is not None and str(data_dir) != "":
        chosen = Path(data_dir).expanduser()
    elif os.environ.get(ENV_VAR):
        chosen = Path(os.environ[ENV_VAR]).expanduser()
    else:
        project = Path(__file__).resolve().parents[3]
        chosen = next((d for d in (DEFAULT_DIR, project / DEFAULT_DIR, PACKAGED_DIR) if d.is_dir()), PACKAGED_DIR)
    if not chosen.is_dir():
        raise ConfigError(f"bfcl: data directory not found: {chosen} (pass -e data_dir=DIR)")
    return chosen.resolve()


def _data_file(path: Path) -> Path:
    """`path`, or its gzipped twin (`NAME.json.gz`) when only that exists (the packaged copy)."""
    packed = path.with_name(path.name + ".gz")
    return packed if not path.exists() and packed.exists() else path


def load(data_dir: Path, category: str) -> tuple[Entry, ...]:
    """The entries of one category (`BFCL_v4_<category>.json` + `possible_answer/` of the same name).

    Both files are JSON Lines. A missing or unreadable file, a malformed line, or a question
    without its answer is a `DataError` naming the file and line: BFCL figures from a partly
    read category would not be comparable.
    """
    questions = _data_file(data_dir / f"BFCL_v4_{category}.json")
    answers = _data_file(data_dir / "possible_answer" / f"BFCL_v4_{category}.json")
    try:
        key = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in (questions, answers))
    except OSError as exc:
        raise DataError(f"bfcl: cannot read {exc.filename}: {exc.strerror or exc}") from exc
    return _load(category, key)


@functools.lru_cache(maxsize=16)
def _load(category: str, key: tuple[tuple[str, int, int], ...]) -> tuple[Entry, ...]:
    (questions, _, _), (answers, _, _) = key
    truth = {row["id"]: row for row in _rows(answers, ("id", "ground_truth"))}
    entries: list[Entry] = []
    for line, row in enumerate(_rows(questions, ("id", "question", "function")), 1):
        gt = truth.get(row["id"])
        if gt is None:
            raise DataError(f"bfcl: {questions} line {line}: no answer for {row['id']!r} in {answers}")
        turns = row["question"]
        if not (isinstance(turns, list) and len(turns) == 1 and isinstance(turns[0], list) and turns[0]):
            raise DataError(f"bfcl: {questions} line {line}: 'question' is not one non-empty turn")
        calls = gt["ground_truth"]
        if not (isinstance(calls, list) and calls and all(isinstance(c, dict) and len(c) == 1 for c in calls)):
            raise DataError(f"bfcl: {answers}: 'ground_truth' of {row['id']!r} is not a list of one-key objects")
        entries.append(Entry(row["id"], category, tuple(turns[0]), tuple(row["function"]), tuple(calls)))
    if not entries:
        raise DataError(f"bfcl: {questions} holds no questions")
    return tuple(entries)


def _rows(path: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    try:
        with gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8") as fh:
            for line, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise DataError(f"bfcl: {path} line {line}: invalid JSON ({exc.msg})") from None
                if not isinstance(row, dict) or any(k not in row for k in keys):
                    raise DataError(f"bfcl: {path} line {line}: expected an object with {', '.join(keys)}")
                rows.append(row)
    except (OSError, EOFError) as exc:
        raise DataError(f"bfcl: cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"bfcl: {path} is not UTF-8 text ({exc.reason})") from exc
    return rows


def tool_names(functions: Any) -> dict[str, str]:
    """Tool name -> BFCL name for one question's functions: invalid characters become `_`, clashes get `_2`...

    Valid names (`^[A-Za-z0-9_-]{1,64}$`) are kept as they are and win over mapped ones, so
    the mapping is collision-free; the returned table makes it reversible.
    """
    originals = [str(f["name"]) for f in functions]
    table: dict[str, str] = {n: n for n in originals if not _BAD_NAME_CHAR.search(n) and 0 < len(n) <= 64}
    for name in originals:
        if name in table.values():
            continue
        base = _BAD_NAME_CHAR.sub("_", name)[:60] or "tool"
        candidate, k = base, 2
        while candidate in table:
            candidate, k = f"{base}_{k}", k + 1
        table[candidate] = name
    return table


def json_schema(schema: Any) -> Any:
    """A BFCL parameter schema as JSON Schema: `dict` -> object, `float` -> number, `tuple` -> array, `any` untyped."""
    if isinstance(schema, list):
        return [json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str) and value in _TYPES:
            if _TYPES[value] is not None:
                out[key] = _TYPES[value]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = json_schema(value)
        else:
            out[key] = value
    return out


def expected_calls(ground_truth: Any) -> list[ExpectedCall]:
    """BFCL's `ground_truth` (a list of `{name: {argument: [acceptable values]}}`) as `ExpectedCall`s."""
    return [ExpectedCall(name, args) for call in ground_truth for name, args in call.items()]


def _pick(options: list[Any]) -> Any:
    """The first acceptable value, with nested possible-answer dicts resolved the same way."""
    value = next(o for o in options if o != "")
    if isinstance(value, dict):
        return {k: _pick(v) for k, v in value.items() if any(o != "" for o in v)}
    if isinstance(value, list):
        return [{k: _pick(v) for k, v in item.items()} if isinstance(item, dict) else item for item in value]
    return value


def reference_answer(entry: Entry) -> list[tuple[str, dict[str, Any]]]:
    """One concrete correct answer (BFCL names): the first acceptable value of each argument.

    An argument that may be omitted is left out when it is not in the function's schema or has
    no other acceptable value (BFCL's answers list a few such arguments).
    """
    props = {f["name"]: f["parameters"].get("properties", {}) for f in entry.functions}
    calls: list[tuple[str, dict[str, Any]]] = []
    for call in entry.ground_truth:
        for name, args in call.items():
            known = props.get(name, {})
            calls.append(
                (
                    name,
                    {k: _pick(v) for k, v in args.items() if any(o != "" for o in v) and (k in known or "" not in v)},
                )
            )
    return calls


class BFCLOptions(BaseModel):
    """`bfcl`'s options (`-e KEY=VALUE`)."""

    model_config = ConfigDict(extra="forbid")

    category: Category = Field(
        default="all", description="simple_python, multiple, parallel, parallel_multiple or all."
    )
    data_dir: str | Path | None = Field(default=None, description="BFCL's data; default $HONE_BFCL or shared data.")


class BFCL(ToolEnv):
    """BFCL single-turn function calling (simple_python, multiple, parallel, parallel_multiple), AST-graded.

    Options: `category` (one of the four, or `all`, the default), `data_dir` (the directory
    holding `BFCL_v4_<category>.json` and `possible_answer/`; default `$HONE_BFCL` or
    `../shared/data/bfcl`). One split, "test". Tasks keep BFCL's ids (`multiple_12`) and
    `meta["subset"]` is the category; with `all`, seed 0 interleaves the categories (so `-n 40`
    samples each), any other seed shuffles deterministically. The episode is one assistant
    message: its tool calls are the answer. Hidden feedback `bfcl_ast` passes when the calls
    match the ground truth by BFCL's rules; its evidence names the verdict kind and reason.
    Hidden feedback `tool_calls` (partial credit, `passed=None`) scores the same calls.
    """

    name = "bfcl"
    version = "1"
    Options: ClassVar[type[BFCLOptions]] = BFCLOptions

    def __init__(self, category: str = "all", data_dir: str | Path | None = None) -> None:
        opts = validate_options(BFCLOptions, {"category": category, "data_dir": data_dir}, "bfcl")
        super().__init__()
        self.category = opts.category
        self.data_dir = resolve_dir(opts.data_dir)
        chosen = CATEGORIES if opts.category == "all" else (opts.category,)
        self._entries: dict[str, tuple[Entry, ...]] = {c: load(self.data_dir, c) for c in chosen}

    def splits(self) -> list[str]:
        return ["test"]

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        if split != "test":
            raise ConfigError(f"bfcl: unknown split {split!r}; splits: test")
        groups = list(self._entries.values())
        entries = [g[i] for i in range(max(len(g) for g in groups)) for g in groups if i < len(g)]
        if seed:
            random.Random(stable_int("bfcl", seed)).shuffle(entries)
        if n is not None:
            entries = entries[: max(n, 0)]
        return [_make_task(e) for e in entries]

    def prompt(self, task: Task) -> list[Message]:
        messages = [Message.system(SYSTEM_PROMPT)]
        for m in task.input["question"]:
            role, content = m.get("role"), str(m.get("content") or "")
            messages.append(Message.system(content) if role == "system" else Message.user(content))
        return messages

    def tool_specs(self, task: Task) -> list[ToolSpec]:
        """The task's functions as tools: mapped names, JSON Schema parameters."""
        back = {orig: tool for tool, orig in task.input["tool_names"].items()}
        return [
            ToolSpec(
                name=back[f["name"]],
                description=str(f.get("description") or ""),
                parameters=json_schema(f.get("parameters") or {"type": "dict", "properties": {}}),
            )
            for f in task.input["functions"]
        ]

    async def reset(self, task: Task) -> Reset:
        self._task = task
        self._done = False
        return Reset(messages=self.prompt(task), tools=self.tool_specs(task))

    async def step(self, message: Message) -> StepResult:
        if self._task is None:
            raise EnvError("bfcl: step() called before reset()")
        if self._done:
            raise EnvError("bfcl: step() called after the episode ended")
        self._done = True  # BFCL single-turn: the first reply is the answer, its calls are never run
        names = self._task.input["tool_names"]
        made = [
            {names.get(c.name, c.name): c.arguments_raw if c.parse_error else c.arguments}
            for c in message.tool_calls or ()
        ]
        return StepResult(done=True, answer=json.dumps(made, ensure_ascii=False) if made else message.text)

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        task = self.find_task(trajectory.task_id)
        message = trajectory.steps[0].call.message if trajectory.steps else None
        try:
            verdict = grade_message(task, message)
            precision = tool_calls_feedback(_score(task, message))
            counts = call_counts(task, message)
        except Exception as exc:
            raise GradeError(f"bfcl: grading task {task.id!r} failed: {exc}") from exc
        return [
            Feedback(
                source="verifier",
                name="bfcl_ast",
                score=1.0 if verdict.ok else 0.0,
                passed=verdict.ok,
                text=f"{verdict.kind}: {verdict.reason}",
                evidence={
                    "kind": verdict.kind,
                    "reason": verdict.reason,
                    "category": task.meta.get("subset"),
                    **counts,
                    "pairs": [
                        {"call": i, "expected": j, "kind": v.kind, "reason": v.reason} for i, j, v in verdict.pairs
                    ],
                },
                visibility="hidden",
            ),
            precision,
        ]


def _make_task(entry: Entry) -> Task:
    return Task(
        id=entry.id,
        input={
            "question": list(entry.messages),
            "functions": list(entry.functions),
            "tool_names": tool_names(entry.functions),
        },
        target=list(entry.ground_truth),
        meta={"subset": entry.category},
    )


def _score(task: Task, message: Message | None) -> ToolCallScore:
    """Partial credit (names, argument names, values) of the calls, under BFCL's names."""
    names: dict[str, str] = task.input["tool_names"]
    made = (
        [c.model_copy(update={"name": names.get(c.name, c.name)}) for c in (message.tool_calls or [])]
        if message
        else []
    )
    schemas = {f["name"]: f for f in task.input["functions"]}
    return score_tool_calls([made], [expected_calls(task.target)], schemas)


def call_counts(task: Task, message: Message | None) -> dict[str, int]:
    """How many calls `message` made, how many the task expects, and how many of the made ones repeat an
    earlier call of the turn exactly (same function, same arguments): what a wrong count was made of."""
    seen: set[str] = set()
    repeated = 0
    calls = (message.tool_calls or []) if message is not None else []
    for call in calls:
        arguments = call.arguments_raw if call.parse_error is not None else call.arguments
        key = json.dumps([call.name, arguments], sort_keys=True, ensure_ascii=False)
        repeated += key in seen
        seen.add(key)
    return {"calls": len(calls), "expected": len(expected_calls(task.target)), "repeated": repeated}


def grade_message(task: Task, message: Message | None) -> CallsVerdict:
    """BFCL's verdict on the tool calls of `message` (None: no reply) for a `bfcl` task."""
    names: dict[str, str] = task.input["tool_names"]
    calls: list[tuple[str, Any]] = []
    for call in (message.tool_calls or []) if message is not None else []:
        arguments: Any = call.arguments
        if call.parse_error is not None:  # the raw text, so the verdict is `malformed`, not "no arguments"
            arguments = call.arguments_raw if call.arguments_raw is not None else f"<{call.parse_error}>"
        calls.append((names.get(call.name, call.name), arguments))
    schemas = {f["name"]: f for f in task.input["functions"]}
    return match_calls(calls, expected_calls(task.target), schemas, ordered=False)
