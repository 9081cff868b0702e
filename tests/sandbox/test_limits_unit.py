"""The sandbox's limits as values: validation at the edges, sizes in bytes, and exactly which rlimits a
child sets (recorded here instead of applied; tests/sandbox/test_adversarial.py checks that the real
ones hold against programs built to break them)."""

from __future__ import annotations

import math
import resource

import pytest

from hone.sandbox import SandboxError
from hone.sandbox._limits import (
    MAX_OUTPUT_BYTES,
    NOFILE,
    NPROC,
    Limits,
    apply_rlimits,
    check_size,
    cpu_limit_s,
    to_bytes,
    utf8_size,
)

MB = 1024 * 1024


def test_limits_at_their_edges_are_accepted() -> None:
    for ok in (Limits(0.001, 64, 1), Limits(5, 64, MAX_OUTPUT_BYTES), Limits(1.5, 4096, 100)):
        assert ok.validate() is ok


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(0, 512, 100), "timeout_s must be a positive number of seconds, got 0"),
        (Limits(-1.0, 512, 100), "timeout_s must be a positive number of seconds, got -1.0"),
        (Limits(math.nan, 512, 100), "timeout_s must be a positive number of seconds, got nan"),
        (Limits(math.inf, 512, 100), "timeout_s must be a positive number of seconds, got inf"),
        (Limits("1", 512, 100), "timeout_s must be a positive number of seconds, got '1'"),  # type: ignore[arg-type]
        (Limits(1, 63, 100), "memory_mb must be an int >= 64, got 63"),
        (Limits(1, 64.0, 100), "memory_mb must be an int >= 64, got 64.0"),  # type: ignore[arg-type]
        (Limits(1, 512, 0), "max_output_bytes must be an int in 1..16777216 (16 MiB), got 0"),
        (Limits(1, 512, MAX_OUTPUT_BYTES + 1), "max_output_bytes must be an int in 1..16777216 (16 MiB), got 16777217"),
        (Limits(1, 512, 1.0), "max_output_bytes must be an int in 1..16777216 (16 MiB), got 1.0"),  # type: ignore[arg-type]
    ],
)
def test_bad_limits_are_refused_naming_the_field(limits: Limits, message: str) -> None:
    with pytest.raises(SandboxError) as info:
        limits.validate()
    assert str(info.value) == message


def test_limits_travel_as_plain_numbers() -> None:
    limits = Limits(2.5, 300, 4096)
    assert limits.to_wire() == {"timeout_s": 2.5, "memory_mb": 300, "max_output_bytes": 4096}
    assert Limits.from_wire({"timeout_s": "3", "memory_mb": 300.0, "max_output_bytes": "10"}) == Limits(3.0, 300, 10)


def test_sizes_are_utf8_bytes_and_the_limit_itself_is_allowed() -> None:
    assert utf8_size("é") == 2 and utf8_size("\ud800") == 3 and to_bytes("a\udcff") == b"a\xff"
    assert to_bytes("\ud800") == "\ud800".encode("utf-8", "surrogatepass")
    check_size("code", "é" * 5, 10)  # exactly 10 bytes
    with pytest.raises(SandboxError) as info:
        check_size("code", "é" * 5 + "x", 10)
    assert str(info.value) == "code is 11 bytes, over the sandbox's limit of 10 bytes"
    check_size("stdin", "x" * 3, 10)  # 3 characters cannot reach 10 bytes: not even measured


def test_the_cpu_limit_is_a_second_past_the_timeout_rounded_up() -> None:
    assert [cpu_limit_s(t) for t in (0.5, 1.0, 1.2, 10)] == [2, 2, 3, 11]


def _recorded(monkeypatch: pytest.MonkeyPatch, hard: dict[int, int]) -> list[tuple[int, tuple[int, int]]]:
    calls: list[tuple[int, tuple[int, int]]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda which: (0, hard.get(which, resource.RLIM_INFINITY)))
    monkeypatch.setattr(resource, "setrlimit", lambda which, pair: calls.append((which, pair)))
    return calls


def test_a_run_sets_every_rlimit_soft_equal_hard(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recorded(monkeypatch, {})
    apply_rlimits(Limits(2.5, 300, 100), session=False)
    assert calls == [
        (resource.RLIMIT_AS, (300 * MB, 300 * MB)),
        (resource.RLIMIT_FSIZE, (300 * MB, 300 * MB)),
        (resource.RLIMIT_NOFILE, (NOFILE, NOFILE)),
        (resource.RLIMIT_NPROC, (NPROC, NPROC)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_CPU, (4, 4)),
    ]


def test_a_session_has_no_cpu_limit_and_a_lower_hard_limit_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _recorded(monkeypatch, {resource.RLIMIT_NOFILE: 100, resource.RLIMIT_AS: 500 * MB})
    apply_rlimits(Limits(2.5, 300, 100), session=True)
    assert dict(calls) == {
        resource.RLIMIT_AS: (300 * MB, 300 * MB),  # below the hard limit: its own value
        resource.RLIMIT_FSIZE: (300 * MB, 300 * MB),
        resource.RLIMIT_NOFILE: (100, 100),  # the hard limit is lower: it
        resource.RLIMIT_NPROC: (NPROC, NPROC),
        resource.RLIMIT_CORE: (0, 0),
    }
