"""Run test code that defines `check(candidate)` against a stand-in callable (record and replay share this).

Stdlib only and no relative imports: the record step also runs this module's source in a
`python -I` subprocess, so recording and replaying execute exactly the same code. The test code
gets its own namespace, a private `random` seeded with 0 (HumanEval's tests draw unseeded
random inputs: both runs must draw the same ones, and the host's own `random` stays untouched)
and a `print` that prints nothing.
"""

import builtins
import functools
import random
import types
from collections.abc import Callable
from typing import Any

SEED = 0


def private_random(seed: int = SEED) -> types.ModuleType:
    """A copy of the `random` module whose functions draw from a private generator seeded with `seed`."""
    inst = random.Random(seed)
    module = types.ModuleType("random")
    shared = getattr(random, "_inst", None)
    for name, value in vars(random).items():
        # random.randint and friends are bound methods (random.random a built-in one) of one hidden instance
        setattr(module, name, getattr(inst, name) if getattr(value, "__self__", None) is shared else value)
    module._inst = inst  # type: ignore[attr-defined]
    return module


def _builtins_with(module: types.ModuleType) -> dict[str, Any]:
    real_import = builtins.__import__

    def importer(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> types.ModuleType:
        if name == "random" and level == 0:
            return module
        return real_import(name, globals, locals, fromlist, level)

    table = dict(vars(builtins))
    table["__import__"] = importer
    table["print"] = lambda *args, **kwargs: None  # a test's prints must not reach the host's terminal
    return table


@functools.lru_cache(maxsize=512)
def _compiled(context: str, test: str, filename: str) -> types.CodeType:
    return compile(f"{context}\n\n{test}\n", filename, "exec")


def run_check(context: str, test: str, entry_point: str, candidate: Callable[..., Any], filename: str) -> None:
    """Execute `context` then `test` in a fresh namespace, bind `entry_point` to `candidate` there too (tests
    may call the function by name) and call `check(candidate)`; whatever `check` raises propagates."""
    namespace: dict[str, Any] = {"__name__": "__hone_check__", "__builtins__": _builtins_with(private_random())}
    exec(_compiled(context, test, filename), namespace)
    check = namespace.get("check")
    if not callable(check):
        raise NameError("the test code does not define check(candidate)")
    namespace[entry_point] = candidate
    check(candidate)
