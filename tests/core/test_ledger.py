import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hone.core import Account, Budget, BudgetExceeded, ConfigError, Ledger


def test_budget_parse_and_str() -> None:
    b = Budget.parse("calls=16, tokens=20000,cost=1.5,seconds=60,tool_calls=3")
    assert (b.calls, b.tokens, b.cost_usd, b.seconds, b.tool_calls) == (16, 20000, 1.5, 60.0, 3)
    assert Budget.parse(str(b)) == b
    assert str(Budget()) == "unlimited" and Budget().is_unlimited()


@pytest.mark.parametrize("text", ["calls", "calls=x", "bogus=3"])
def test_budget_parse_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="budget"):
        Budget.parse(text)


def test_reserve_call_refuses_at_limit_and_leaves_ledgers_untouched() -> None:
    run = Account(Budget(calls=2))
    ep = run.child(Budget(calls=5))
    ep.reserve_call()
    ep.reserve_call()
    with pytest.raises(BudgetExceeded, match="calls"):
        ep.reserve_call()
    assert run.ledger.calls == 2 and ep.ledger.calls == 2
    assert not run.can_call()


def test_tokens_limit_applies_after_the_crossing_call() -> None:
    acct = Account(Budget(tokens=100))
    acct.reserve_call()
    acct.record_usage(80, 30)
    assert acct.ledger.tokens == 110
    with pytest.raises(BudgetExceeded, match="tokens"):
        acct.reserve_call()


def test_child_spend_rolls_up() -> None:
    parent = Account()
    a, b = parent.child(), parent.child()
    a.reserve_call()
    a.record_usage(10, 5, cost_usd=0.01)
    b.reserve_tool_call()
    b.record_env_step()
    assert parent.ledger.calls == 1 and parent.ledger.tokens == 15
    assert parent.ledger.tool_calls == 1 and parent.ledger.env_steps == 1
    assert parent.ledger.cost_usd == pytest.approx(0.01)
    total = Ledger.total([a.ledger, b.ledger])
    assert total.calls == 1 and total.tool_calls == 1


@given(limit=st.integers(0, 20), attempts=st.integers(0, 40), children=st.integers(1, 4))
def test_calls_never_exceed_budget(limit: int, attempts: int, children: int) -> None:
    run = Account(Budget(calls=limit))
    kids = [run.child() for _ in range(children)]
    for i in range(attempts):
        with contextlib.suppress(BudgetExceeded):
            kids[i % children].reserve_call()
    assert run.ledger.calls == min(limit, attempts)
    assert sum(k.ledger.calls for k in kids) == run.ledger.calls
