"""The build IR: what every stage of `hone env build` reads and writes (plain pydantic, JSON on disk).

One vocabulary for all inputs (a Python module, JSON tool specs, OpenAPI 3, an FSM, the shipped
`toolgen` catalog) and both generators (seeded templates, an LLM):

    SourceSpec --decompose--> [ScenarioDraft] --document--> [ToolDoc] --integrate--> Backend
      --> Scenario --tasks--> [Atom] --scale--> [BuiltTask] --verify--> [BuiltTask with expectations]

The backend contract (it runs only inside `hone.sandbox`): `Backend.source` is a Python module.
Before it runs, the module global `state` is bound to a deep copy of `Backend.state` (a JSON
object); the module may replace it. Every tool `T` of the scenario is a module-level function
`T(**arguments)` that reads and writes the global `state` and returns a JSON-serialisable value
(str, number, bool, None, list, dict). A tool reports bad input by raising `ValueError` (public
feedback for the agent); any other exception is a tool error. The final `state` (canonical JSON)
is what completeness compares.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

IR_VERSION = 1
"""Bumped when a stored stage file can no longer be read by this code (the cache key includes it)."""

TOOL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
"""A tool name every provider and template accepts, and a Python identifier (the backend's function name)."""

SourceKind = Literal["python", "json", "openapi", "fsm", "catalog"]
Level = Literal[1, 2, 3, 4, 5, 6]
LEVELS: dict[int, str] = {
    1: "single",  # one call to the one offered tool
    2: "choice",  # one call, the right tool among distractors
    3: "parallel",  # several independent calls in one step (order does not matter)
    4: "chain",  # a later call needs an earlier call's result
    5: "ask",  # a required value is missing: ask the (simulated) user, then call
    6: "no_tool",  # no offered tool applies: answer without calling any
}
"""The complexity levels; `Task.meta["level"]` holds the number, `meta["subset"]` the name."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolDoc(_Model):
    """One tool: what the model is shown (`name`, `description`, `parameters`) plus build-time facts.

    `parameters` is a JSON Schema object (`type: object`, `properties`, `required`). `returns`
    describes the result for the document. `effect="write"` tools change the backend state.
    `source_name` is the name in the input (a BFCL dotted name, an OpenAPI `GET /pets/{id}`)
    when it had to be mapped to a valid tool name. `utterances` are request templates with
    `{argument}` slots that generators may use to phrase tasks; they are never shown to the model.
    """

    name: str
    description: str
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}, "required": []})
    returns: str = ""
    effect: Literal["read", "write"] = "read"
    source_name: str | None = None
    utterances: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not TOOL_NAME.match(value):
            raise ValueError(f"tool name {value!r} is not a valid identifier (letters, digits, _; at most 64)")
        return value

    def spec(self) -> dict[str, Any]:
        """The OpenAI `tools` entry the model sees."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class Backend(_Model):
    """The real functions behind a scenario's tools (see the module docstring for the contract)."""

    source: str
    state: dict[str, Any] = Field(default_factory=dict)


class SourceSpec(_Model):
    """A parsed input: what `hone env build SPEC` was given, normalised but not yet decomposed.

    `tools` are the documents found in the input (may be empty for an FSM before documenting);
    `backend` is set when the input brings its own implementation (a Python module, an FSM
    compiled to code, an OpenAPI local backend); `data` keeps kind-specific structure (the FSM's
    states/actions/goals, the OpenAPI resources, the catalog's scenarios) for later stages.
    """

    kind: SourceKind
    name: str
    description: str = ""
    tools: list[ToolDoc] = Field(default_factory=list)
    backend: Backend | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ScenarioDraft(_Model):
    """A scenario before integration: a coherent situation and the tools it needs (stage 1 output)."""

    name: str
    title: str
    description: str
    tool_names: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)


class Scenario(_Model):
    """A scenario ready for tasks: its documents, its backend, and value pools for task arguments.

    `pools` maps an argument name to values that make sense in this world (existing ids, names,
    cities); generators draw task arguments from them. `heldout` marks a scenario reserved for
    the held-out-environment split.
    """

    name: str
    title: str
    description: str
    tools: list[ToolDoc]
    backend: Backend
    pools: dict[str, list[Any]] = Field(default_factory=dict)
    heldout: bool = False
    data: dict[str, Any] = Field(default_factory=dict)

    def tool(self, name: str) -> ToolDoc:
        for doc in self.tools:
            if doc.name == name:
                return doc
        raise KeyError(f"scenario {self.name!r} has no tool {name!r}")


class Call(_Model):
    """One tool call of a reference solution (concrete argument values)."""

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Atom(_Model):
    """A level-1 request a generator proposes: one call and how a user might ask for it.

    `text` is the request with every argument value stated. `mentions` maps each argument to
    the words of `text` that state it (complexity scaling removes one for level 5 and replaces
    one by an earlier call's description for level 4). `answer_from_result` says that the
    final reply must state the call's result (a read); otherwise the state check decides.
    """

    scenario: str
    call: Call
    text: str
    mentions: dict[str, str] = Field(default_factory=dict)
    answer_from_result: bool = True
    phrasing: str = ""


class BuiltTask(_Model):
    """A task of a built environment, with its reference solution and (after verification) expectations.

    `reference` is a list of steps; the calls of one step are independent (order-insensitive);
    `[]` means the right behaviour is to call no tool (level 6). `offered` are the tool names
    the model is given (the needed ones plus distractors, shuffled). `hidden_facts` are what the
    simulated user may reveal when asked (level 5): argument name -> value as the user says it.
    Verification fills `results` (each reference call's JSON result, by step), `answer` (what
    the final reply must state, or None) and `final_state` (sha256 of the canonical final state).
    `goal` (an FSM goal's conditions, `[[variable, op, operand], ...]`) replaces the final-state
    comparison: any sequence of calls that reaches the goal completes the task, as in AutoWebWorld.
    """

    id: str
    scenario: str
    level: Level
    prompt: str
    offered: list[str]
    reference: list[list[Call]]
    hidden_facts: dict[str, str] = Field(default_factory=dict)
    phrasing: str = ""
    results: list[list[Any]] | None = None
    answer: str | None = None
    final_state: str | None = None
    goal: list[list[Any]] | None = None

    @property
    def verified(self) -> bool:
        return self.final_state is not None


class BuildManifest(_Model):
    """`build.json` of a built environment: what was built, how, and what verification dropped."""

    ir_version: int = IR_VERSION
    name: str
    kind: SourceKind
    generator: str
    seed: int
    scenarios: int
    tools: int
    tasks: int
    by_level: dict[str, int] = Field(default_factory=dict)
    dropped: dict[str, int] = Field(default_factory=dict)
    splits: dict[str, int] = Field(default_factory=dict)
    stages: dict[str, str] = Field(default_factory=dict)
    hone_version: str = ""


def canonical_json(value: Any) -> str:
    """The one JSON text of `value` used for hashing and comparing states and results."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def state_digest(state: Any) -> str:
    """sha256 of the canonical JSON of a backend state (what `BuiltTask.final_state` stores)."""
    return hashlib.sha256(canonical_json(state).encode()).hexdigest()
