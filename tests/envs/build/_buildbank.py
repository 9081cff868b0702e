"""A tiny stateful bank as a build source, for the pipeline tests (no parser involved)."""

from __future__ import annotations

from typing import Any

from hone.envs.build import Backend, SourceSpec, ToolDoc

BANK_SOURCE = """
def find_account(owner):
    for acc_id, acc in sorted(state["accounts"].items()):
        if acc["owner"] == owner:
            return acc_id
    raise ValueError("no account for %s" % owner)


def get_balance(account_id):
    if account_id not in state["accounts"]:
        raise ValueError("no account %s" % account_id)
    return state["accounts"][account_id]["balance"]


def account_info(account_id):
    acc = state["accounts"].get(account_id)
    if acc is None:
        raise ValueError("no account %s" % account_id)
    return {"id": account_id, "owner": acc["owner"], "balance": acc["balance"]}


def deposit(account_id, amount):
    if account_id not in state["accounts"]:
        raise ValueError("no account %s" % account_id)
    state["accounts"][account_id]["balance"] += amount
    return state["accounts"][account_id]["balance"]


def transfer(source_id, target_id, amount):
    accounts = state["accounts"]
    if source_id not in accounts or target_id not in accounts:
        raise ValueError("unknown account")
    if accounts[source_id]["balance"] < amount:
        raise ValueError("insufficient funds")
    accounts[source_id]["balance"] -= amount
    accounts[target_id]["balance"] += amount
    return "ok"


def list_rates():
    return state["rates"]


def convert(amount, currency):
    return round(amount * state["rates"][currency], 2)


def broken(account_id):
    return 1 / 0
"""

OWNERS = ["Alice Martin", "Bob Chen", "Carla Diaz", "David Okafor", "Eva Novak", "Farid Haddad"]
ACCOUNTS = {f"acc-{i + 1:03d}": {"owner": o, "balance": 100 * (i + 1)} for i, o in enumerate(OWNERS)}


def _doc(name: str, description: str, props: dict[str, Any], effect: str = "read", **kw: Any) -> ToolDoc:
    schema = {"type": "object", "properties": props, "required": list(props)}
    return ToolDoc(name=name, description=description, parameters=schema, effect=effect, **kw)  # type: ignore[arg-type]


def bank_source(*, broken: bool = False, groups: bool = True, name: str = "bank") -> SourceSpec:
    acc = {"type": "string", "description": "The account id."}
    tools = [
        _doc("find_account", "Finds the account id of a customer by owner name.", {"owner": {"type": "string"}}),
        _doc(
            "get_balance",
            "Returns the balance of an account.",
            {"account_id": acc},
            utterances=["What is the balance of account {account_id}?", "How much money is in {account_id}?"],
        ),
        _doc("account_info", "Shows an account's details.", {"account_id": acc}),
        _doc(
            "deposit",
            "Deposits money into an account.",
            {"account_id": acc, "amount": {"type": "integer", "minimum": 1, "maximum": 50}},
            "write",
        ),
        _doc(
            "transfer",
            "Transfers money between two accounts.",
            {"source_id": acc, "target_id": acc, "amount": {"type": "integer", "minimum": 1, "maximum": 60}},
            "write",
        ),
        _doc("list_rates", "Lists the exchange rates.", {}),
        _doc(
            "convert",
            "Converts an amount into another currency.",
            {
                "amount": {"type": "integer", "minimum": 1, "maximum": 500},
                "currency": {"type": "string", "enum": ["EUR", "GBP", "JPY"]},
            },
        ),
    ]
    if broken:
        tools.append(_doc("broken", "Computes a risk score for an account.", {"account_id": acc}))
    data: dict[str, Any] = {
        "pools": {
            "owner": OWNERS,
            "account_id": sorted(ACCOUNTS),
            "source_id": sorted(ACCOUNTS),
            "target_id": sorted(ACCOUNTS),
        }
    }
    if groups:
        data["groups"] = [
            {
                "name": "accounts",
                "title": "Accounts",
                "description": "Look up and move money.",
                "tools": ["find_account", "get_balance", "account_info", "deposit", "transfer"]
                + (["broken"] if broken else []),
            },
            {
                "name": "exchange",
                "title": "Exchange",
                "description": "Currency rates.",
                "tools": ["list_rates", "convert"],
            },
        ]
    return SourceSpec(
        kind="python",
        name=name,
        description="A small bank.",
        tools=tools,
        backend=Backend(
            source=BANK_SOURCE, state={"accounts": ACCOUNTS, "rates": {"EUR": 0.9, "GBP": 0.8, "JPY": 150.0}}
        ),
        data=data,
    )
