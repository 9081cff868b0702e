"""`gsm8k`: grade-school math word problems read from a JSONL file, solved with a calculator tool."""

from __future__ import annotations

import functools
import json
import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from hone.core import ConfigError, DataError, Message, Task, parse_number, stable_int, validate_options

from ._datafile import resolve_data_file
from ._options import Tools, ToolSpec, build_tools
from ._toolenv import ToolEnv

ENV_VAR = "HONE_GSM8K"
"""Environment variable naming the GSM8K JSONL file when no `path` option is given."""
DEFAULT_PATH = Path("../shared/data/gsm8k/test.jsonl")
"""Tried relative to the working directory when neither `path` nor `HONE_GSM8K` is set."""

SYSTEM_PROMPT = (
    "Solve the math word problem. Reason step by step and use the `calculator` tool for arithmetic. "
    'When you are done, reply without calling a tool and end your reply with "The answer is N." '
    "where N is the final number."
)
SYSTEM_PROMPT_PYTHON = (
    "Solve the math word problem. Reason step by step and use the `python` tool to compute (print the results). "
    'When you are done, reply without calling a tool and end your reply with "The answer is N." '
    "where N is the final number."
)
SYSTEM_PROMPT_BOTH = (
    "Solve the math word problem. Reason step by step and use the `calculator` or `python` tool to compute. "
    'When you are done, reply without calling a tool and end your reply with "The answer is N." '
    "where N is the final number."
)
SYSTEM_PROMPT_NO_TOOLS = (
    'Solve the math word problem. Reason step by step and end your reply with "The answer is N." '
    "where N is the final number."
)


@dataclass(frozen=True)
class _Row:
    index: int  # 0-based line index in the file: the task id, stable even when other lines are broken
    question: str
    target: int | float
    solution: str


@dataclass(frozen=True)
class _Parsed:
    rows: tuple[_Row, ...]
    errors: tuple[str, ...]


def resolve_path(path: str | Path | None = None) -> Path:
    """The GSM8K file: `path`, else `$HONE_GSM8K`, else `../shared/data/gsm8k/test.jsonl` if it exists."""
    return resolve_data_file("gsm8k", path, ENV_VAR, DEFAULT_PATH, "PATH/test.jsonl")


def load(path: Path) -> _Parsed:
    """The parsed file, cached per (path, modification time, size) so new instances are cheap.

    An unreadable file, and one with no valid problem (empty, or every line malformed), is a
    `DataError` naming the file: a run of 0 tasks must not look like a result.
    """
    try:
        stat = path.stat()
        parsed = _parse(str(path), stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise DataError(f"gsm8k: cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"gsm8k: {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    if not parsed.rows:
        if parsed.errors:
            raise DataError(
                f"gsm8k: no valid problem in {path}: all {len(parsed.errors)} line(s) malformed; first: "
                f"{parsed.errors[0].removeprefix('gsm8k: ')}"
            )
        raise DataError(f"gsm8k: {path} holds no problems (it is empty)")
    return parsed


@functools.lru_cache(maxsize=8)
def _parse(path: str, mtime_ns: int, size: int) -> _Parsed:
    rows: list[_Row] = []
    errors: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for index, line in enumerate(fh):
            if not line.strip():
                continue
            row = _parse_line(line, index)
            if isinstance(row, str):
                errors.append(f"gsm8k: line {index + 1} of {path}: {row}")
            else:
                rows.append(row)
    return _Parsed(tuple(rows), tuple(errors))


def _parse_line(line: str, index: int) -> _Row | str:
    try:
        obj = json.loads(line.strip())
    except json.JSONDecodeError as exc:
        return f"invalid JSON ({exc.msg}, column {exc.colno})"
    if not isinstance(obj, dict):
        return "not a JSON object"
    for key in ("question", "answer"):
        if key not in obj:
            return f"missing {key!r}"
        if not isinstance(obj[key], str):
            return f"{key!r} is not a string"
    solution: str = obj["answer"]
    if "####" not in solution:
        return "no '####' in 'answer'"
    final = solution.rsplit("####", 1)[1].strip().replace(",", "")
    value = parse_number(final)
    if value is None:
        return f"the answer after '####' is not a number: {final!r}"
    target: int | float = int(value) if value.is_integer() else value
    return _Row(index, obj["question"], target, solution)


class GSM8KOptions(BaseModel):
    """`gsm8k`'s options (`-e KEY=VALUE`)."""

    model_config = ConfigDict(extra="forbid")

    path: str | Path | None = Field(default=None, description="The JSONL file; default $HONE_GSM8K or shared data.")
    strict: bool = Field(default=False, description="A malformed line is an error instead of skipped.")
    tools: Tools = Field(default=("calculator",), description="Built-in tools, or none.")


class GSM8K(ToolEnv):
    """GSM8K grade-school math word problems from a JSONL file (split "test"), with a calculator tool.

    Options: `path` (the JSONL file; default `$HONE_GSM8K` or `../shared/data/gsm8k/test.jsonl`),
    `strict` (raise `DataError` on the first malformed line instead of skipping it; default
    false), `tools` ("calculator" default, "python" (a sandboxed interpreter, fresh per call),
    "python-session" (one interpreter per episode), a list such as "calculator,python", or
    "none"). Malformed lines among good ones are skipped with one warning (their messages are
    kept in `data_errors`); a file with no good line, or that cannot be read, is a `DataError`.
    `tasks` keeps file order for seed 0 and shuffles deterministically for any other seed,
    then takes the first `n`. Task ids are `gsm8k-<0-based line index>`.
    """

    name = "gsm8k"
    version = "1"
    Options: ClassVar[type[GSM8KOptions]] = GSM8KOptions

    def __init__(
        self,
        path: str | Path | None = None,
        strict: bool = False,
        tools: ToolSpec = "calculator",
    ) -> None:
        opts = validate_options(GSM8KOptions, {"path": path, "strict": strict, "tools": tools}, "gsm8k")
        super().__init__(build_tools(opts.tools))
        self.path = resolve_path(opts.path)
        self.strict = opts.strict
        parsed = load(self.path)
        self.data_errors: list[str] = list(parsed.errors)
        if parsed.errors:
            if self.strict:
                raise DataError(parsed.errors[0])
            warnings.warn(
                f"gsm8k: skipped {len(parsed.errors)} malformed line(s) of {self.path}; first: {parsed.errors[0]}",
                stacklevel=2,
            )
        self._rows = parsed.rows

    def splits(self) -> list[str]:
        return ["test"]

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        if split != "test":
            raise ConfigError(f"gsm8k: unknown split {split!r}; splits: test")
        rows = list(self._rows)
        if seed:
            random.Random(stable_int("gsm8k", seed)).shuffle(rows)
        if n is not None:
            rows = rows[: max(n, 0)]
        return [
            Task(id=f"gsm8k-{r.index}", input={"question": r.question}, target=r.target, meta={"line": r.index + 1})
            for r in rows
        ]

    def prompt(self, task: Task) -> list[Message]:
        names = {t.name for t in self.tools}
        if not names:
            system = SYSTEM_PROMPT_NO_TOOLS
        elif "python" not in names:
            system = SYSTEM_PROMPT
        else:
            system = SYSTEM_PROMPT_BOTH if "calculator" in names else SYSTEM_PROMPT_PYTHON
        return [Message.system(system), Message.user(str(task.input["question"]))]
