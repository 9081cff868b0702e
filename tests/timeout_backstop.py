"""A pytest plugin: a hung test ends, named, even when it swallows pytest-timeout's signal.

pytest-timeout's default `signal` method raises in the test's main thread, which fails just that test
and lets the suite go on, unless the hang is in code that catches the exception and carries on, or in
a thread or C call the signal never reaches (a bug that made the budget never bind ran a test until it
was killed from outside at 2 GB). So beside the plugin's own timer, each test gets a backstop thread:
`GRACE_S` seconds after the timeout it prints `TIMEOUT: <test id>` and the threads' stacks, then ends
the process (pytest-timeout's `thread` method), so CI fails at once with the test named.

Loaded by tests/conftest.py; `HONE_TEST_TIMEOUT_GRACE` sets the grace in seconds.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

GRACE_S = float(os.environ.get("HONE_TEST_TIMEOUT_GRACE", "10"))


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    import pytest_timeout

    if not settings.timeout or settings.timeout <= 0:
        return None  # no timeout for this test: nothing to back up
    pytest_timeout.pytest_timeout_set_timer(item, settings)  # the plugin's timer, as configured
    first = getattr(item, "cancel_timeout", None)

    def backstop() -> None:
        sys.stderr.write(
            f"\nTIMEOUT: {item.nodeid} still running {GRACE_S:g}s after its {settings.timeout:g}s limit "
            "(the timeout signal did not stop it); its stacks follow and the run ends here\n"
        )
        pytest_timeout.timeout_timer(item, settings)  # dumps every thread's stack, then os._exit(1)

    timer = threading.Timer(settings.timeout + GRACE_S, backstop)
    timer.daemon = True
    timer.name = f"timeout backstop {item.nodeid}"
    timer.start()

    def cancel() -> None:
        if first is not None:
            first()
        timer.cancel()

    item.cancel_timeout = cancel  # type: ignore[attr-defined]  # what the plugin's cancel hook calls
    return True
