import contextlib
import time

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


def test_ledger_add_sums_every_counter() -> None:
    a = Ledger(calls=1, prompt_tokens=10, completion_tokens=5, cost_usd=0.25, tool_calls=2, env_steps=3, seconds=1.5)
    b = Ledger(calls=2, prompt_tokens=7, completion_tokens=4, cost_usd=0.5, tool_calls=1, env_steps=4, seconds=2.0)
    a.add(b)
    assert a == Ledger(
        calls=3, prompt_tokens=17, completion_tokens=9, cost_usd=0.75, tool_calls=3, env_steps=7, seconds=3.5
    )
    assert a.tokens == 26 and Ledger.total([b, b, Ledger()]).model_dump() == {
        "calls": 4, "prompt_tokens": 14, "completion_tokens": 8, "cost_usd": 1.0, "tool_calls": 2, "env_steps": 8,
        "seconds": 4.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("calls=-1", "must be a number >= 0"),
        ("calls=inf", "must be a number >= 0"),
        ("calls=nan", "must be a number >= 0"),
        ("calls=2.5", "calls must be a whole number"),
        ("tokens=1e3.5", "not a number"),
        ("calls==3", "not a number"),
        ("cost", "use KEY=VALUE with KEY in calls, cost, cost_usd, seconds, tokens, tool_calls"),
    ],
)
def test_budget_parse_says_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        Budget.parse(text)
    assert why in str(info.value) and repr(text.strip()) in str(info.value)


def test_budget_parse_edges() -> None:
    assert Budget.parse("calls=0").calls == 0  # zero is a limit, not "unlimited"
    assert Budget.parse("seconds=0.5,cost=0.01") == Budget(seconds=0.5, cost_usd=0.01)
    assert Budget.parse("tokens=2e6").tokens == 2_000_000 and isinstance(Budget.parse("tokens=2e6").tokens, int)
    assert Budget.parse(" calls = 3 ,, ") == Budget(calls=3)
    assert str(Budget(calls=3, seconds=1.5)) == "calls=3,seconds=1.5"


def test_each_limit_names_itself_with_used_and_maximum() -> None:
    tools = Account(Budget(tool_calls=1))
    tools.reserve_tool_call()
    with pytest.raises(BudgetExceeded) as info:
        tools.reserve_tool_call()
    assert (info.value.limit, info.value.used, info.value.maximum) == ("tool_calls", 2, 1)
    assert tools.ledger.tool_calls == 1
    calls = Account(Budget(calls=1))
    calls.reserve_call()
    with pytest.raises(BudgetExceeded) as info:
        calls.reserve_call()
    assert (info.value.limit, info.value.used, info.value.maximum) == ("calls", 2, 1)
    money = Account(Budget(cost_usd=0.5))
    money.reserve_call()
    money.record_usage(1, 1, 0.49)
    money.reserve_call()  # 0.49 < 0.5: allowed
    money.record_usage(1, 1, 0.01)  # exactly at the limit: the next call is refused
    with pytest.raises(BudgetExceeded) as info:
        money.reserve_call()
    assert info.value.limit == "cost_usd" and info.value.used == pytest.approx(0.5) and info.value.maximum == 0.5
    tokens = Account(Budget(tokens=10))
    tokens.reserve_call()
    tokens.record_usage(6, 4, None)  # exactly 10: spent
    assert not tokens.can_call()
    with pytest.raises(BudgetExceeded) as info:
        tokens.reserve_call()
    assert (info.value.limit, info.value.used, info.value.maximum) == ("tokens", 10, 10)
    assert str(info.value) == "budget exceeded: tokens 10 > limit 10"


def test_seconds_budget_and_a_resumed_ledger_count_time_already_spent() -> None:
    fresh = Account(Budget(seconds=60))
    assert 0 <= fresh.elapsed() < 5 and fresh.can_call()
    resumed = Account(Budget(seconds=60), ledger=Ledger(seconds=59.9))
    assert 59.9 <= resumed.elapsed() < 65
    time.sleep(0.15)
    with pytest.raises(BudgetExceeded) as info:
        resumed.reserve_call()
    assert info.value.limit == "seconds" and info.value.maximum == 60
    assert resumed.close().seconds >= 60


def test_a_child_has_its_own_budget_and_counts_in_its_parent() -> None:
    run = Account(Budget(calls=10))
    ep = run.child(Budget(calls=1))
    ep.reserve_call()
    assert not ep.can_call() and run.can_call()  # the child's own limit binds it, not the parent
    ep.reserve_tool_call()
    ep.record_env_step()
    ep.record_usage(3, 2, 0.1)
    assert (run.ledger.calls, run.ledger.tool_calls, run.ledger.env_steps, run.ledger.tokens) == (1, 1, 1, 5)
    assert run.ledger.cost_usd == pytest.approx(0.1)
    run.record_spent(Ledger(calls=4, prompt_tokens=1, seconds=99.0))
    assert run.ledger.calls == 5 and run.ledger.seconds == 0.0  # wall time is the account's own
    assert run.child().budget.is_unlimited()


def test_every_record_adds_to_what_is_there() -> None:
    acct = Account()
    for _ in range(3):
        acct.reserve_call()
        acct.reserve_tool_call()
        acct.record_env_step()
        acct.record_usage(10, 5, None)
    led = acct.ledger
    assert (led.calls, led.tool_calls, led.env_steps, led.prompt_tokens, led.completion_tokens) == (3, 3, 3, 30, 15)
    assert led.cost_usd == 0.0  # no cost reported: nothing added


def test_spent_tool_calls_do_not_stop_the_model_answering_and_spent_calls_do_not_stop_tools() -> None:
    # The last tool result still gets its answer: a model call checks the call budget only.
    acct = Account(Budget(tool_calls=1))
    acct.reserve_tool_call()
    assert acct.can_call()
    acct.reserve_call()
    with pytest.raises(BudgetExceeded, match="tool_calls"):
        acct.reserve_tool_call()
    calls = Account(Budget(calls=1))
    calls.reserve_call()
    calls.reserve_tool_call()  # a tool call checks the tool budget only
    assert not calls.can_call()
