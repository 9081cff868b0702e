"""What a sandboxed run returns, and the error raised when the sandbox itself fails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from hone.core._errors import HoneError

ExecStatus = Literal["ok", "error", "timeout", "memory", "output_limit", "killed"]
STATUSES: tuple[ExecStatus, ...] = ("ok", "error", "timeout", "memory", "output_limit", "killed")


class SandboxError(HoneError):
    """The sandbox was misused or its machinery failed; never raised for the program's own failure."""

    kind = "SandboxError"


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one sandboxed program (or one session call).

    `returncode` is the exit code, `-signal` when a signal killed the program, and None when the
    sandbox stopped it (timeout, output limit). `stdout`/`stderr` end with a marker line when cut.
    """

    status: ExecStatus
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        """True when the program exited with status 0."""
        return self.status == "ok"

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ExecResult:
        status = data["status"]
        if status not in STATUSES:
            raise SandboxError(f"sandbox server sent an unknown status {status!r}")
        rc = data.get("returncode")
        return cls(
            status=cast(ExecStatus, status),
            returncode=None if rc is None else int(rc),
            stdout=str(data.get("stdout", "")),
            stderr=str(data.get("stderr", "")),
            duration_s=float(data.get("duration_s", 0.0)),
        )


def truncation_marker(limit: int) -> str:
    """The line appended to a stream cut at `limit` bytes."""
    return f"\n[... output truncated at {limit} bytes]"


def decode_output(data: bytes | bytearray, limit: int) -> str:
    """Decode captured bytes, cutting at `limit` bytes with a marker line."""
    if len(data) > limit:
        return bytes(data[:limit]).decode("utf-8", "replace") + truncation_marker(limit)
    return bytes(data).decode("utf-8", "replace")
