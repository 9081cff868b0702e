"""The `python` tool: a code interpreter the model may call (Tool-Star/ToolRL style), run in `hone.sandbox`.

Two modes, chosen per environment and recorded in the tool's description (so in every
trajectory's `tools`): `stateless` runs each call as a fresh program; `session` keeps one
sandboxed interpreter per episode, so names defined in one call are there in the next.
Models trained on one mode break on the other ("Agents Learn Their Runtime"), which is why
the mode is part of the record rather than a hidden setting.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from hone.core import ToolSpec, Trajectory

from ._tools import Tool

if TYPE_CHECKING:
    from hone.sandbox import ExecResult, PythonSession, Sandbox

PythonMode = Literal["stateless", "session"]

_DESCRIPTIONS: dict[str, str] = {
    "stateless": "Run Python code in a sandbox and get what it prints. Mode: stateless: every call starts "
    "a fresh interpreter, so define everything the code uses and print the results.",
    "session": "Run Python code in a sandbox and get what it prints. Mode: session: one interpreter is "
    "kept for the episode, so names defined in earlier calls stay defined; a final expression's value "
    "is printed.",
}
MAX_OUTPUT = 4_000
"""Characters of output returned to the model (the sandbox caps what the program may write)."""


def python_mode(trajectory: Trajectory) -> PythonMode | None:
    """The `python` tool's mode in `trajectory` (from its recorded tool spec), or None without one."""
    for spec in trajectory.tools:
        if spec.name == "python":
            return "session" if "Mode: session" in spec.description else "stateless"
    return None


def format_result(result: ExecResult) -> str:
    """What the model sees: stdout, then stderr, then a note when the run did not end normally."""
    parts = [result.stdout.rstrip()]
    if result.stderr.strip():
        parts.append(result.stderr.rstrip())
    notes = {
        "timeout": "[stopped: the code ran past its time limit]",
        "memory": "[stopped: the code ran out of memory]",
        "output_limit": "[stopped: the code printed too much]",
        "killed": f"[stopped: the process was killed (return code {result.returncode})]",
    }
    if result.status in notes:
        parts.append(notes[result.status])
    text = "\n".join(p for p in parts if p) or "(no output)"
    if len(text) > MAX_OUTPUT:
        half = MAX_OUTPUT // 2
        text = f"{text[:half]}\n[... {len(text) - MAX_OUTPUT} characters cut ...]\n{text[-half:]}"
    return text


class PythonTool(Tool):
    """`python(code)`: runs `code` in the sandbox and returns its output (errors included, as the model's feedback).

    A program that fails is not a tool failure: its traceback is the output, and the episode
    goes on. `fresh()` gives each episode its own instance (`ToolEnv.clone` calls it), so a
    session never leaks between episodes; `aclose()` ends the session (the Runner calls it
    through the environment when an episode ends).
    """

    def __init__(
        self,
        mode: PythonMode = "stateless",
        *,
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        sandbox: Sandbox | None = None,
    ) -> None:
        if mode not in _DESCRIPTIONS:
            raise ValueError(f"python tool: mode must be 'stateless' or 'session', not {mode!r}")
        self.mode: PythonMode = mode
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._sandbox = sandbox
        self._session: PythonSession | None = None
        self._lock = asyncio.Lock()
        spec = ToolSpec(
            name="python",
            description=_DESCRIPTIONS[mode],
            parameters={
                "type": "object",
                "properties": {"code": {"type": "string", "description": "Python source to run."}},
                "required": ["code"],
            },
        )
        super().__init__(spec, self._run)

    def fresh(self) -> PythonTool:
        """The episode's instance: a new one with no session in session mode; `self` when stateless."""
        if self.mode == "stateless":
            return self
        return PythonTool(self.mode, timeout_s=self.timeout_s, memory_mb=self.memory_mb, sandbox=self._sandbox)

    def _pool(self) -> Sandbox:
        from hone.feedback import shared_sandbox

        return self._sandbox or shared_sandbox()

    async def _run(self, code: str) -> str:
        if self.mode == "stateless":
            result = await self._pool().run(code, timeout_s=self.timeout_s, memory_mb=self.memory_mb)
            return format_result(result)
        async with self._lock:  # one cell at a time in a session, as in a notebook
            if self._session is None:
                self._session = await asyncio.to_thread(self._pool().session, memory_mb=self.memory_mb)
            session = self._session
            result = await asyncio.to_thread(session.run, code, timeout_s=self.timeout_s)
            if not session.alive:  # a timeout or crash ended the interpreter: the next call starts anew
                await asyncio.to_thread(session.close)
                self._session = None
                return format_result(result) + "\n[the session was restarted: earlier definitions are gone]"
            return format_result(result)

    async def aclose(self) -> None:
        """End the session, if one was started."""
        if self._session is not None:
            session, self._session = self._session, None
            await asyncio.to_thread(session.close)
