"""A small built environment written by hand (no pipeline): a shop with six tasks, one per level.

Tests of `BuiltEnv`, the CLI and the policies use it; the references are verified in the real
sandbox (`_harness.batch_program`) exactly as the pipeline verifies them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hone.envs.build._harness import batch_program, new_nonce, parse_batch
from hone.envs.build._spec import LEVELS, Backend, BuildManifest, BuiltTask, Call, Scenario, ToolDoc

SHOP_SOURCE = '''
def get_stock(item):
    """How many of `item` the shop holds."""
    if item not in state["stock"]:
        raise ValueError(f"unknown item {item!r}")
    return state["stock"][item]

def add_stock(item, qty):
    """Adds `qty` of `item`; returns the new count."""
    if qty <= 0:
        raise ValueError("qty must be positive")
    state["stock"][item] = state["stock"].get(item, 0) + qty
    return state["stock"][item]

def get_price(item):
    return state["price"][item]

def set_price(item, price):
    state["price"][item] = price
    return price

def get_weather(city):
    return {"city": city, "sky": "clear"}

def hang_forever():
    while True:
        pass

def crash_backend():
    import os
    os._exit(3)
'''


def _arg(kind: str, description: str) -> dict[str, Any]:
    return {"type": kind, "description": description}


def _tool(name: str, description: str, effect: str = "read", **props: dict[str, Any]) -> ToolDoc:
    params = {"type": "object", "properties": props, "required": list(props)}
    return ToolDoc(name=name, description=description, parameters=params, effect=effect)


SHOP_TOOLS = [
    _tool("get_stock", "How many units of an item are in stock.", item=_arg("string", "The item name")),
    _tool(
        "add_stock",
        "Add units of an item to the stock.",
        "write",
        item=_arg("string", "The item name"),
        qty={"type": "integer", "minimum": 1, "description": "How many units to add (quantity)"},
    ),
    _tool("get_price", "The unit price of an item.", item=_arg("string", "The item name")),
    _tool("get_weather", "Today's weather in a city.", city=_arg("string", "The city")),
    _tool(
        "set_price",
        "Set the unit price of an item.",
        "write",
        item=_arg("string", "The item"),
        price=_arg("number", "The price"),
    ),
    _tool("hang_forever", "A broken tool that never returns."),
    _tool("crash_backend", "A broken tool that ends its interpreter."),
]


def _c(name: str, **arguments: Any) -> Call:
    return Call(name=name, arguments=arguments)


def shop_tasks() -> list[BuiltTask]:
    """One task per level (ids `shop-L<level>`), a write (`shop-L1b`), parallel reads with no answer (`shop-L3r`)."""
    rows: list[tuple[str, int, str, list[str], list[list[Call]], dict[str, str]]] = [
        ("shop-L1", 1, "How many apples are in stock?", ["get_stock"], [[_c("get_stock", item="apple")]], {}),
        ("shop-L1b", 1, "Please add 4 pears to the stock.", ["add_stock"], [[_c("add_stock", item="pear", qty=4)]], {}),
        (
            "shop-L2",
            2,
            "What does one pear cost?",
            ["get_weather", "get_price", "get_stock"],
            [[_c("get_price", item="pear")]],
            {},
        ),
        (
            "shop-L3",
            3,
            "Add 1 apple and 2 pears to the stock.",
            ["add_stock", "get_weather"],
            [[_c("add_stock", item="apple", qty=1), _c("add_stock", item="pear", qty=2)]],
            {},
        ),
        (
            "shop-L3r",
            3,
            "Look up the stock of apples and of pears.",
            ["get_stock", "get_price"],
            [[_c("get_stock", item="apple"), _c("get_stock", item="pear")]],
            {},
        ),
        (
            "shop-L3m",
            3,
            "Add 1 pear to the stock, and look up the price of apples.",
            ["add_stock", "get_price"],
            [[_c("add_stock", item="pear", qty=1), _c("get_price", item="apple")]],
            {},
        ),
        ("shop-L1n", 1, "Set the apple price to 1.5.", ["set_price"], [[_c("set_price", item="apple", price=1.5)]], {}),
        (
            "shop-L4",
            4,
            "Add as many pears as there are apples in stock.",
            ["get_stock", "add_stock"],
            [[_c("get_stock", item="apple")], [_c("add_stock", item="pear", qty=3)]],
            {},
        ),
        (
            "shop-L5",
            5,
            "Please add some apples to the stock.",
            ["add_stock", "get_price"],
            [[_c("add_stock", item="apple", qty=6)]],
            {"qty": "6"},
        ),
        (
            "shop-L6",
            6,
            "What is the capital of France?",
            ["get_stock", "get_price", "hang_forever", "crash_backend"],
            [],
            {},
        ),
    ]
    return [
        BuiltTask(id=i, scenario="shop", level=lv, prompt=p, offered=o, reference=r, hidden_facts=h)
        for i, lv, p, o, r, h in rows
    ]


_TRAIN = ("shop-L1b", "shop-L1n", "shop-L3", "shop-L3r", "shop-L3m")


def write_shop_env(root: Path | str, *, name: str = "shop") -> Path:
    """Write the shop environment to `root` (verified in the sandbox) and return `root`."""
    from hone.sandbox import default_sandbox

    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    backend = Backend(source=SHOP_SOURCE, state={"stock": {"apple": 3, "pear": 5}, "price": {"apple": 1.5, "pear": 2}})
    scenario = Scenario(
        name="shop",
        title="A corner shop",
        description="Stock and prices of a small shop.",
        tools=SHOP_TOOLS,
        backend=backend,
        pools={"item": ["apple", "pear"]},
    )
    tasks = shop_tasks()
    nonce = new_nonce()
    ran = default_sandbox().run_sync(batch_program(backend, [t.reference for t in tasks], nonce), timeout_s=60)
    verified: list[BuiltTask] = []
    for task, outcome in zip(tasks, parse_batch(ran.stdout, nonce, len(tasks)), strict=True):
        if outcome.error is not None or outcome.results is None:
            raise RuntimeError(f"shop task {task.id} does not verify: {outcome.error}")
        answer = None
        if (
            task.id not in ("shop-L3r", "shop-L3m")
            and task.reference
            and SHOP_TOOLS[[d.name for d in SHOP_TOOLS].index(task.reference[-1][-1].name)].effect == "read"
        ):
            answer = str(outcome.results[-1][-1])
        verified.append(
            task.model_copy(update={"results": outcome.results, "final_state": outcome.final_state, "answer": answer})
        )
    by_level: dict[str, int] = {}
    for t in verified:
        by_level[LEVELS[t.level]] = by_level.get(LEVELS[t.level], 0) + 1
    manifest = BuildManifest(
        name=name,
        kind="python",
        generator="hand",
        seed=0,
        scenarios=1,
        tools=len(SHOP_TOOLS),
        tasks=len(verified),
        by_level=by_level,
        splits={"train": len(_TRAIN), "test": len(verified) - len(_TRAIN)},
    )
    head = {
        "manifest": manifest.model_dump(mode="json"),
        "scenarios": [scenario.model_dump(mode="json")],
        "system_prompt": "",
    }
    (out / "hone_env.json").write_text(json.dumps(head, indent=1), encoding="utf-8")
    (out / "tasks.jsonl").write_text("".join(t.model_dump_json() + "\n" for t in verified), encoding="utf-8")
    ids = [t.id for t in verified]
    splits = {"train": list(_TRAIN), "test": [i for i in ids if i not in _TRAIN], "heldout": []}
    (out / "splits.json").write_text(json.dumps(splits), encoding="utf-8")
    return out
