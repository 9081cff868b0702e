"""`BuiltEnv`: the Environment over a built directory (`hone env build SPEC -o DIR`).

An episode poses one task: the directory's system prompt and the task's request, with the
ToolDoc specs of the task's `offered` tools. Calls are checked against the tool's JSON Schema
first (a broken call is public feedback, never run); valid calls run in ONE sandboxed
`PythonSession` per episode, holding the scenario's backend (`_harness`). Level 5: a reply
without tool calls while hidden facts remain is a question, which the simulated user answers.

Grading (hidden) compares the final backend state with the reference's (`BuiltTask.final_state`)
and, for reads, the final "Answer:" with `BuiltTask.answer`; level 6 also requires no call, and
the reference calls neither the state nor the answer can show must have been made. The final
state is taken from the live session when the episode ends; a stored trajectory graded by another
instance is *replayed*: its valid calls, in order, run in a fresh sandbox (backends are
deterministic functions of state and arguments, so the state is the same).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from hone.core import (
    TOOL_ERROR_PREFIX,
    ConfigError,
    EnvError,
    ErrorInfo,
    Feedback,
    GradeError,
    Message,
    Task,
    ToolCall,
    ToolSpec,
    Trajectory,
    run_sync,
    stable_int,
    validate_options,
)

from .._base import Reset, StepResult
from .._toolenv import MAX_OUTPUT_CHARS
from ._envcalls import (
    _answer_of,
    _check_call,
    _final_text,
    _offered,
    _tool_error,
    canonical_hash,
    goal_unmet,
)
from ._envkit import (
    SPLITS,
    Made,
    _Data,
    _read,
    answers_match,
    fact_cues,
    user_reply,
    wants_to_ask,
)
from ._harness import DEFAULT_CALL_TIMEOUT_S, call_code, new_nonce, parse_outcome, parse_state, setup_code, state_code
from ._spec import LEVELS, BuildManifest, BuiltTask, Scenario

if TYPE_CHECKING:
    from hone.sandbox import PythonSession, Sandbox


class BuiltEnvOptions(BaseModel):
    """What `-e KEY=VALUE` may set on a built environment."""

    model_config = ConfigDict(extra="forbid")
    call_timeout_s: float = Field(DEFAULT_CALL_TIMEOUT_S, gt=0, le=600, description="Seconds per tool call.")
    memory_mb: int = Field(512, ge=64, le=65536, description="Memory of the episode's interpreter (MiB).")


class BuiltEnv:
    """A built environment: tool-use tasks at six levels over sandboxed, stateful backends.

    Invalid calls (unknown tool, arguments that break the schema) are public feedback the agent
    may act on: `tool_errors = "observe"` is this environment's choice under the Runner's default
    `EpisodeLimits(tool_errors="auto")`.

    `BuiltEnv.load(DIR)` reads a directory written by `hone env build` (or the data directory of
    its installed package). Options: `call_timeout_s` bounds each tool call (a hanging tool is cut
    and recorded as a tool error), `memory_mb` the episode's interpreter.
    """

    Options: ClassVar[type[BaseModel]] = BuiltEnvOptions
    tool_errors: ClassVar[str] = "observe"
    name: str
    version: str
    # One episode's state (reset by `_begin`).
    _built: BuiltTask | None
    _done: bool
    _session: PythonSession | None
    _dead: str | None
    _attempted: list[Made]
    _final: tuple[str, list[Made], str | None, str | None] | None
    _revealed: set[str]
    _user_turns: int
    _final_state: Any
    _last_state: Any

    def __init__(
        self,
        data: _Data,
        *,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        memory_mb: int = 512,
        sandbox: Sandbox | None = None,
    ) -> None:
        checked = validate_options(
            BuiltEnvOptions, {"call_timeout_s": call_timeout_s, "memory_mb": memory_mb}, "BuiltEnv"
        )
        self._data = data
        self.name = data.manifest.name
        self.version = canonical_hash(data.manifest.model_dump(mode="json"))[:12]
        self.call_timeout_s = checked.call_timeout_s
        self.memory_mb = checked.memory_mb
        self._sandbox = sandbox
        self._begin(None)

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> BuiltEnv:
        """The environment in a built directory (`hone_env.json`, `tasks.jsonl`, `splits.json`)."""
        return cls(_read(Path(path)), **options)

    # --- the loaded data -----------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._data.root

    @property
    def manifest(self) -> BuildManifest:
        return self._data.manifest

    @property
    def scenarios(self) -> dict[str, Scenario]:
        return self._data.scenarios

    def built_task(self, task_id: str) -> BuiltTask:
        """The stored task (with its reference solution) called `task_id`."""
        try:
            return self._data.tasks[task_id]
        except KeyError:
            raise GradeError(f"{self.name}: unknown task id {task_id!r}") from None

    def built_tasks(self, split: str | None = None) -> list[BuiltTask]:
        """Every stored task of `split` (all splits when None), in stored order."""
        if split is None:
            return list(self._data.tasks.values())
        return [self._data.tasks[i] for i in self._split_ids(split)]

    # --- the Environment protocol ----------------------------------------------------------

    def splits(self) -> list[str]:
        return [s for s in SPLITS if self._data.splits.get(s)]

    def _split_ids(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ConfigError(f"{self.name}: unknown split {split!r}; splits: {', '.join(SPLITS)}")
        return self._data.splits.get(split, [])

    def tasks(self, split: str = "test", *, n: int | None = None, seed: int = 0) -> list[Task]:
        """The split's tasks, shuffled by `seed` within each level and dealt level by level, so the
        first `n` cover every level evenly."""
        by_level: dict[int, list[BuiltTask]] = {}
        for task_id in self._split_ids(split):
            task = self._data.tasks[task_id]
            by_level.setdefault(task.level, []).append(task)
        rng = random.Random(stable_int(self.name, split, seed))
        queues = []
        for level in sorted(by_level):
            rows = by_level[level]
            rng.shuffle(rows)
            queues.append(rows)
        dealt: list[BuiltTask] = []
        while any(queues):
            dealt += [q.pop(0) for q in queues if q]
        if n is not None:
            dealt = dealt[: max(n, 0)]
        return [self._task(t) for t in dealt]

    def _task(self, task: BuiltTask) -> Task:
        heldout = self._data.scenarios[task.scenario].heldout
        meta = {"level": task.level, "subset": LEVELS[task.level], "scenario": task.scenario, "heldout": heldout}
        return Task(id=task.id, input={"prompt": task.prompt}, target=task.answer, meta=meta)

    def clone(self) -> Self:
        """A copy sharing the loaded data, with no episode state (the Runner clones per episode)."""
        other = copy.copy(self)
        other._begin(None)
        return other

    async def reset(self, task: Task) -> Reset:
        await self.aclose()
        built = self.built_task(task.id)
        scenario = self._data.scenarios[built.scenario]
        self._begin(built)
        tools = [
            ToolSpec(name=d.name, description=d.description, parameters=d.parameters)
            for d in _offered(built, scenario, self._data.scenarios)
        ]
        return Reset(messages=[Message.system(self._data.system_prompt), Message.user(built.prompt)], tools=tools)

    async def step(self, message: Message) -> StepResult:
        task = self._built
        if task is None:
            raise EnvError(f"{self.name}: step() called before reset()")
        if self._done:
            raise EnvError(f"{self.name}: step() called after the episode ended")
        if not message.tool_calls:
            if task.level == 5 and wants_to_ask(task, message.text, self._revealed, self._user_turns):
                self._user_turns += 1
                cues = fact_cues(task, self._data.scenarios[task.scenario])
                reply = user_reply(message.text, task.hidden_facts, cues, self._revealed)
                return StepResult(observations=[Message.user(reply)])
            self._done = True
            await self._capture()
            return StepResult(done=True, answer=_answer_of(message.text))
        result = StepResult()
        for call in message.tool_calls:
            content, failed, error = await self._run_call(task, call)
            result.observations.append(Message.tool(content, tool_call_id=call.id, name=call.name, error=failed))
            if error is not None:
                result.tool_errors.append(error)
        return result

    async def aclose(self) -> None:
        """Keep the final state (for `grade`) and end the episode's interpreter; the Runner calls it."""
        if self._built is not None and self._final is None:
            await self._capture()
        if self._session is not None:
            session, self._session = self._session, None
            await asyncio.to_thread(session.close)

    async def grade(self, trajectory: Trajectory) -> list[Feedback]:
        from hone.feedback._toolmatch import ExpectedCall
        from hone.feedback._toolreward import completeness_feedback, score_tool_calls, tool_calls_feedback

        task = self.built_task(trajectory.task_id)
        scenario = self._data.scenarios[task.scenario]
        made = [list(s.call.message.tool_calls or []) for s in trajectory.steps]
        own = {d.name for d in scenario.tools}  # a lent distractor never runs (see _run_call)
        valid = [
            c
            for step in made
            for c in step
            if c.name in own and _check_call(task, scenario, c, self._data.scenarios) is None
        ]
        attempted = [(c.name, dict(c.arguments)) for c in valid]
        try:
            live = self._final is not None and self._final[0] == task.id and self._final[1] == attempted
            if live and (task.goal is None or self._final_state is not None):
                assert self._final is not None
                digest, why, final_state = self._final[2], self._final[3], self._final_state
            else:
                self._last_state = None
                digest, why = await self._replay(scenario, attempted, fresh=True)
                final_state = self._last_state
        except Exception as exc:
            raise GradeError(f"{self.name}: replaying task {task.id!r} failed: {exc}") from exc
        if task.goal is not None:  # an FSM goal: any path that reaches it completes the task (AutoWebWorld)
            unmet = goal_unmet(task.goal, final_state)
            state_ok = digest is not None and unmet is None
            detail = ["the goal holds" if state_ok else f"the goal does not hold ({why or unmet})"]
        else:
            state_ok = digest is not None and digest == task.final_state
            detail = ["final state matches the reference" if state_ok else f"final state differs ({why or 'changed'})"]
        schemas = {d.name: d.parameters for d in _offered(task, scenario, self._data.scenarios)}
        reference = [
            [ExpectedCall(c.name, {k: [v] for k, v in c.arguments.items()}) for c in s] for s in task.reference
        ]
        score = score_tool_calls(made, reference, schemas)
        if task.level == 6 and any(made):
            state_ok = False
            detail.append(f"no tool applies, yet {sum(map(len, made))} call(s) were made")
        elif task.reference and task.goal is None:
            unseen = await self._unobservable(task, scenario)
            missed = [v for v in score.verdicts if (v.step, v.index) in unseen and v.kind != "ok"]
            if missed:
                # Neither the final state nor the answer shows these calls' effect: they must have been made.
                state_ok = False
                names = ", ".join(f"{v.name} ({v.kind})" for v in missed)
                detail.append(f"reference calls whose effect the state and answer cannot show were not made: {names}")
        answer_ok: bool | None = None
        if task.answer is not None:
            got = trajectory.answer if trajectory.answer is not None else _answer_of(_final_text(trajectory))
            answer_ok = answers_match(got, task.answer)
            detail.append(f"answer {'matches' if answer_ok else 'differs'}: expected {task.answer!r}, got {got!r}")
        return [completeness_feedback(state_ok, answer_ok, "; ".join(detail)), tool_calls_feedback(score)]

    async def _unobservable(self, task: BuiltTask, scenario: Scenario) -> set[tuple[int, int]]:
        """(step, index) of the reference calls completeness cannot see: reads whose result the answer does
        not state, and writes when the reference leaves the state as it was (a no-op write)."""
        last = (len(task.reference) - 1, len(task.reference[-1]) - 1) if task.reference else None
        out: set[tuple[int, int]] = set()
        unchanged: bool | None = None
        for s, step in enumerate(task.reference):
            for i, call in enumerate(step):
                if scenario.tool(call.name).effect == "read":
                    if task.answer is None or (s, i) != last:
                        out.add((s, i))
                    continue
                if unchanged is None:
                    try:
                        unchanged = task.final_state == await self._initial(scenario)
                    except _BackendDown:
                        unchanged = False  # the state check fails on its own then
                if unchanged:
                    out.add((s, i))
        return out

    # --- demonstrations (the `Demonstrator` protocol; the scripted policy is in `_demos`) ----------

    def demonstrations(
        self, n: int, *, seed: int = 0, split: str = "train", mix: Mapping[str, float] | None = None
    ) -> list[Trajectory]:
        """`n` graded demonstrations of `split`'s tasks; see `ademonstrations` (blocks; prefer it in async code)."""
        return run_sync(self.ademonstrations(n, seed=seed, split=split, mix=mix))

    async def ademonstrations(
        self, n: int, *, seed: int = 0, split: str = "train", mix: Mapping[str, float] | None = None
    ) -> list[Trajectory]:
        """`n` demonstrations, each a real episode of this environment played by a scripted policy from the
        task's reference and graded: `clean`, `recovered` or `flawed` by `mix` (default `_demos.DEMONSTRATION_MIX`;
        `meta["style"]`, `meta["flaw"]`). Deterministic for `seed`; only `split`'s tasks (held-out scenarios
        only when `split="heldout"`)."""
        from ._demos import demonstrations

        return await demonstrations(self, n, seed=seed, split=split, mix=mix)

    # --- episode machinery -----------------------------------------------------------------

    def _begin(self, task: BuiltTask | None) -> None:
        self._built = task
        self._done = False
        self._session = None
        self._dead = None
        self._attempted = []
        self._final = None
        self._final_state = None
        self._last_state = None
        self._revealed = set()
        self._user_turns = 0

    def _pool(self) -> Sandbox:
        from hone.sandbox import default_sandbox

        return self._sandbox or default_sandbox()

    async def _open(self, scenario: Scenario) -> PythonSession:
        session = await asyncio.to_thread(self._pool().session, memory_mb=self.memory_mb)
        result = await asyncio.to_thread(session.run, setup_code(scenario.backend), timeout_s=60)
        if not result.ok:
            await asyncio.to_thread(session.close)
            last = (result.stderr.strip().splitlines() or [result.status])[-1]
            raise _BackendDown(f"the backend of scenario {scenario.name!r} did not load ({last})")
        return session

    async def _run_call(self, task: BuiltTask, call: ToolCall) -> tuple[str, str | None, ErrorInfo | None]:
        """The observation, why the call failed (None if it ran) and the protocol error to record."""
        scenario = self._data.scenarios[task.scenario]
        problem = _check_call(task, scenario, call, self._data.scenarios)
        if problem is not None:
            return _tool_error(problem, call)
        if all(d.name != call.name for d in scenario.tools):  # a distractor lent by another scenario
            why = f"{call.name} cannot serve this request (it belongs to another service)"
            return f"{TOOL_ERROR_PREFIX}{why}", why, None
        self._attempted.append((call.name, dict(call.arguments)))
        try:
            if self._dead is not None:
                raise _BackendDown(self._dead)
            if self._session is None:
                self._session = await self._open(scenario)
            nonce = new_nonce()
            code = call_code(call.name, call.arguments, nonce, timeout_s=self.call_timeout_s)
            ran = await asyncio.to_thread(self._session.run, code, timeout_s=self.call_timeout_s + 10)
            if not self._session.alive:
                raise _BackendDown(f"{call.name} ended the tool backend ({ran.status})")
        except Exception as exc:  # a dead or unloadable backend: every later call says so
            self._dead = self._dead or str(exc)
            return _tool_error(f"{self._dead}; no tool can run in this episode any more", call)
        outcome = parse_outcome(ran.stdout, nonce)
        if outcome.ok:
            text = json.dumps(outcome.result, ensure_ascii=False)
            if len(text) > MAX_OUTPUT_CHARS:
                text = f"{text[:MAX_OUTPUT_CHARS]}\n[output cut: {len(text)} characters in all]"
            return text, None, None
        if outcome.kind == "value_error":  # bad input the tool itself refused: feedback, not a protocol error
            return f"{TOOL_ERROR_PREFIX}{outcome.error}", outcome.error, None
        return _tool_error(f"{call.name} failed ({outcome.kind}): {outcome.error}", call)

    async def _capture(self) -> None:
        """Record the final state digest of the episode (from the live session)."""
        task = self._built
        if task is None:
            return
        scenario = self._data.scenarios[task.scenario]
        digest: str | None = None
        why: str | None = self._dead
        if why is None:
            try:
                if self._session is None:
                    digest = await self._initial(scenario)
                else:
                    digest, why = await self._state(self._session)
            except Exception as exc:
                why = f"the final state could not be read ({exc})"
        self._final = (task.id, list(self._attempted), digest, why)
        self._final_state = self._last_state if self._session is not None else None

    async def _state(self, session: PythonSession) -> tuple[str | None, str | None]:
        nonce = new_nonce()
        ran = await asyncio.to_thread(session.run, state_code(nonce), timeout_s=60)
        got = parse_state(ran.stdout, nonce)
        self._last_state = got.state if got.ok else None
        return (got.digest, None) if got.ok else (None, f"the final state could not be read ({got.error})")

    async def _initial(self, scenario: Scenario) -> str | None:
        cached = self._data.initial.get(scenario.name)
        if cached is None:
            digest, why = await self._replay(scenario, [])
            if digest is None:
                raise _BackendDown(why or "no state")
            cached = self._data.initial[scenario.name] = digest
        return cached

    async def _replay(
        self, scenario: Scenario, calls: Sequence[Made], *, fresh: bool = False
    ) -> tuple[str | None, str | None]:
        """The final state digest after `calls` in a fresh sandbox (a stored trajectory's regrade);
        `fresh` skips the cached initial digest (the caller needs the state itself in `_last_state`)."""
        if not calls and not fresh and scenario.name in self._data.initial:
            return self._data.initial[scenario.name], None
        try:
            session = await self._open(scenario)
        except _BackendDown as exc:
            return None, str(exc)
        try:
            for name, arguments in calls:
                code = call_code(name, arguments, new_nonce(), timeout_s=self.call_timeout_s)
                await asyncio.to_thread(session.run, code, timeout_s=self.call_timeout_s + 10)
                if not session.alive:
                    return None, f"{name} ended the tool backend"
            digest, why = await self._state(session)
        finally:
            await asyncio.to_thread(session.close)
        if not calls and digest is not None:
            self._data.initial[scenario.name] = digest
        return digest, why


class _BackendDown(Exception):
    """The episode's interpreter is gone or never loaded."""
