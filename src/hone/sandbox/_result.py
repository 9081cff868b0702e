"""What a sandboxed run returns, and the error raised when the sandbox itself fails."""

from __future__ import annotations

import base64
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
        cap, (out_cut, err_cut) = int(data["cap"]), data["cut"]
        return cls(
            status=cast(ExecStatus, status),
            returncode=None if rc is None else int(rc),
            stdout=decode_output(base64.b64decode(data["stdout"]), cap, cut=bool(out_cut)),
            stderr=decode_output(base64.b64decode(data["stderr"]), cap, cut=bool(err_cut)),
            duration_s=float(data.get("duration_s", 0.0)),
        )


def truncation_marker(limit: int) -> str:
    """The line appended to a stream cut at `limit` bytes."""
    return f"\n[... output truncated at {limit} bytes]"


def decode_output(data: bytes, limit: int, *, cut: bool = False) -> str:
    """Decode captured bytes, cutting at `limit` bytes with a marker line (also when `cut`: more was written)."""
    if cut or len(data) > limit:
        return data[:limit].decode("utf-8", "replace") + truncation_marker(limit)
    return data.decode("utf-8", "replace")
