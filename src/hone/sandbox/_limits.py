"""Per-run limits: validation on the host, rlimits in the child."""

from __future__ import annotations

import math
import resource
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._result import SandboxError

SANDBOX_UID = 65534  # the uid (and gid) a program sees inside its user namespace
NPROC = 64  # processes + threads per sandbox (counted per user namespace, so per sandbox)
NOFILE = 256
MIN_MEMORY_MB = 64  # the forked interpreter already maps ~20 MB; below this nothing useful runs
MAX_WORKERS = 1024
# Inputs are refused on the host above these sizes, so no request can overrun the protocol's frame
# limit (worst case: every input JSON-escaped six-fold) or stall the server's loop for long.
MAX_CODE_BYTES = 4 * 1024 * 1024
MAX_STDIN_BYTES = 16 * 1024 * 1024
MAX_FILES = 1000
MAX_FILE_NAME_BYTES = 1024  # a whole relative path; each part also at most NAME_MAX (255)
MAX_FILES_BYTES = 16 * 1024 * 1024  # all files together
MAX_OUTPUT_BYTES = 16 * 1024 * 1024  # per stream


@dataclass(frozen=True)
class Limits:
    """The limits of one run. `memory_mb` caps the address space and, separately, the scratch tmpfs."""

    timeout_s: float
    memory_mb: int
    max_output_bytes: int

    def validate(self) -> Limits:
        if not (isinstance(self.timeout_s, int | float) and math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise SandboxError(f"timeout_s must be a positive number of seconds, got {self.timeout_s!r}")
        if not isinstance(self.memory_mb, int) or self.memory_mb < MIN_MEMORY_MB:
            raise SandboxError(f"memory_mb must be an int >= {MIN_MEMORY_MB}, got {self.memory_mb!r}")
        if not isinstance(self.max_output_bytes, int) or not 1 <= self.max_output_bytes <= MAX_OUTPUT_BYTES:
            raise SandboxError(
                f"max_output_bytes must be an int in 1..{MAX_OUTPUT_BYTES} (16 MiB), got {self.max_output_bytes!r}"
            )
        return self

    def to_wire(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "max_output_bytes": self.max_output_bytes}

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Limits:
        return cls(float(data["timeout_s"]), int(data["memory_mb"]), int(data["max_output_bytes"]))


def to_bytes(text: str) -> bytes:
    """`text` as UTF-8; lone surrogates become the bytes they escape (or their own UTF-8 form)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def utf8_size(text: str) -> int:
    """Bytes of `text` as UTF-8 (lone surrogates count as the 3 bytes they may travel as)."""
    return len(text.encode("utf-8", "surrogatepass"))


def check_size(what: str, text: str, limit: int) -> None:
    """Refuse `text` (code or stdin) over `limit` bytes, naming the limit."""
    # A str of n characters is at most 4n bytes: most inputs need no encoding to be measured.
    if len(text) * 4 > limit and (size := utf8_size(text)) > limit:
        raise SandboxError(f"{what} is {size} bytes, over the sandbox's limit of {limit} bytes")


def cpu_limit_s(timeout_s: float) -> int:
    """RLIMIT_CPU for a run: a backstop one second past the wall-clock timeout."""
    return math.ceil(timeout_s) + 1


def apply_rlimits(limits: Limits, *, session: bool) -> None:
    """Set every rlimit with soft == hard, so the program cannot raise them again.

    Sessions get no RLIMIT_CPU: it is cumulative over the process, and each call has its own wall timeout.
    """
    mb = 1024 * 1024
    pairs = [
        (resource.RLIMIT_AS, limits.memory_mb * mb),
        (resource.RLIMIT_FSIZE, limits.memory_mb * mb),
        (resource.RLIMIT_NOFILE, NOFILE),
        (resource.RLIMIT_NPROC, NPROC),
        (resource.RLIMIT_CORE, 0),
    ]
    if not session:
        pairs.append((resource.RLIMIT_CPU, cpu_limit_s(limits.timeout_s)))
    for which, value in pairs:
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
