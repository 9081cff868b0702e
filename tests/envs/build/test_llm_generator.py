"""LLMGenerator with a scripted model: every stage's proposals are validated (backends and calls in the real
sandbox), invalid answers are retried with the errors fed back, and what fails is dropped and counted."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from hone.core import Message, ToolSpec
from hone.envs.build._generator import Generator
from hone.envs.build._llm import GenerationError, LLMGenerator
from hone.envs.build._llmcheck import extract_json, keeps_values, run_calls, stated_values
from hone.envs.build._spec import Backend, Call, Scenario, ScenarioDraft, SourceSpec, ToolDoc
from hone.models import Scripted

SOURCE = """
def find_book(title):
    for book in state["books"]:
        if book["title"].lower() == title.lower():
            return book
    raise ValueError(f"no book titled {title!r}")

def lend_book(book_id, member):
    for book in state["books"]:
        if book["id"] == book_id:
            if book["lent_to"]:
                raise ValueError(f"{book_id} is already lent")
            book["lent_to"] = member
            return {"book_id": book_id, "lent_to": member}
    raise ValueError(f"unknown book {book_id}")

def wait_forever(seconds):
    while True:
        pass
"""
STATE = {"books": [{"id": "B1", "title": "Dune", "lent_to": None}, {"id": "B2", "title": "Emma", "lent_to": "ann"}]}


def _doc(name: str, props: dict[str, Any], effect: str = "read") -> ToolDoc:
    params = {"type": "object", "properties": props, "required": list(props)}
    return ToolDoc(name=name, description=f"The {name} tool.", parameters=params, effect=effect)  # type: ignore[arg-type]


DOCS = [
    _doc("find_book", {"title": {"type": "string"}}),
    _doc("lend_book", {"book_id": {"type": "string"}, "member": {"type": "string"}}, "write"),
    _doc("wait_forever", {"seconds": {"type": "integer"}}),
]
SCENARIO = Scenario(
    name="library", title="Library desk", description="A librarian lends books.", tools=DOCS,
    backend=Backend(source=SOURCE, state=STATE), pools={"title": ["Dune", "Emma"]},
)  # fmt: skip

STAGES = {
    "Split this tool set": "decompose",
    "Write the tool documents": "document",
    "Improve these tool descriptions": "rewrite",
    "Write the Python backend": "backend",
    "Propose argument values": "pools",
    "different requests a user could make": "atoms",
    "Rewrite this request": "paraphrase",
}


class StageModel:
    """A Scripted model answering each stage from its own queue; records every conversation it saw."""

    def __init__(self, **replies: Sequence[Any]) -> None:
        self.queues = {stage: [r if isinstance(r, str) else json.dumps(r) for r in rs] for stage, rs in replies.items()}
        self.seen: list[tuple[str, list[Message]]] = []
        self.model = Scripted(self._reply)

    def _reply(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> str:
        prompt = messages[1].content or ""
        stage = next(s for key, s in STAGES.items() if key in prompt)
        self.seen.append((stage, list(messages)))
        return self.queues[stage].pop(0)

    def asked(self, stage: str) -> list[list[Message]]:
        return [m for s, m in self.seen if s == stage]


def _gen(model: StageModel, **options: Any) -> LLMGenerator:
    return LLMGenerator(model.model, **{"timeout_s": 5.0, **options})


RNG: Callable[[], random.Random] = lambda: random.Random(7)  # noqa: E731


def test_is_a_generator() -> None:
    assert isinstance(_gen(StageModel()), Generator)
    assert _gen(StageModel()).name == "llm"


async def test_a_world_from_a_description_alone() -> None:
    """No tools and no backend in the source: the model proposes all of it, and all of it is checked."""
    model = StageModel(
        decompose=[{"scenarios": [{"name": "library", "title": "Library", "description": "Lending.",
                                   "tool_names": ["find_book", "lend_book"]}]}],
        document=[{"tools": [
            {"name": "find_book", "description": "Find a book by title.", "effect": "read",
             "parameters": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
             "utterances": ["Do you have {title}?"], "type": "function"},
            {"name": "lend_book", "description": "Lend a book.", "effect": "write",
             "parameters": {"type": "object", "properties": {"book_id": {"type": "string"},
                            "member": {"type": "string"}}, "required": ["book_id", "member"]},
             "utterances": ["Lend {book_id} to {member}", "Lend {book_id} please"]},
        ]}],
        backend=[{"source": SOURCE, "state": STATE,
                  "pools": {"title": ["Dune", 3], "member": ["ann", "bo"], "x": [1]}}],
        atoms=[{"requests": [
            {"tool": "find_book", "arguments": {"title": "Dune"}, "text": "Is Dune on the shelf?",
             "mentions": {"title": "Dune"}},
            {"tool": "lend_book", "arguments": {"book_id": "B1", "member": "bo"},
             "text": "Please lend B1 to bo.", "mentions": {}},
        ]}],
    )  # fmt: skip
    gen = _gen(model)
    source = SourceSpec(kind="catalog", name="library", description="A small lending library.")
    (draft,) = await gen.decompose(source, RNG())
    assert draft.tool_names == ["find_book", "lend_book"]
    docs = await gen.document(source, draft, RNG())
    assert [d.name for d in docs] == ["find_book", "lend_book"]
    assert docs[1].effect == "write" and docs[1].utterances == ["Lend {book_id} to {member}"]  # a slot missing: dropped
    backend, pools = await gen.integrate(source, draft, docs, RNG())
    assert backend.source == SOURCE and backend.state == STATE
    assert pools == {"title": ["Dune"], "member": ["ann", "bo"]}  # 3 is no string, x is no argument
    scenario = SCENARIO.model_copy(update={"tools": docs, "backend": backend, "pools": pools})
    atoms = await gen.atoms(scenario, 5, RNG())
    assert [(a.call.name, a.mentions) for a in atoms] == [
        ("find_book", {"title": "Dune"}),
        ("lend_book", {"book_id": "B1", "member": "bo"}),  # mentions filled from the stated values
    ]
    assert atoms[0].answer_from_result and not atoms[1].answer_from_result and atoms[0].phrasing == "llm"
    assert gen.stats["integrate"]["dropped_pool_value"] == 2
    assert gen.stats["document"]["dropped_bad_utterance"] == 1
    assert gen.stats["atoms"] == {"requests": 1, "proposed": 2, "kept": 2}
    # The prompts a real model gets name the answer's shape and show an example.
    for _, messages in model.seen:
        assert "Answer:" in (messages[1].content or "") and "Example" in (messages[1].content or "")


async def test_broken_json_is_asked_again_with_the_error() -> None:
    good = {"scenarios": [{"name": "desk", "title": "Desk", "description": "d", "tool_names": ["find_book"]}]}
    model = StageModel(decompose=['Sure! Here it is: {"scenarios": [', good])
    gen = _gen(model)
    source = SourceSpec(kind="json", name="lib", tools=DOCS[:1])
    drafts = await gen.decompose(source, RNG())
    assert [d.name for d in drafts] == ["desk"]
    retry = model.asked("decompose")[1]
    assert retry[-2].role == "assistant" and "not valid JSON" in (retry[-1].content or "")
    assert gen.stats["decompose"]["retries"] == 1 and gen.stats["decompose"]["dropped_invalid_json"] == 1
    assert gen.dropped() == {"llm.decompose.invalid_json": 1}


async def test_fenced_json_and_unknown_tools() -> None:
    bad = {"scenarios": [{"name": "desk", "title": "Desk", "description": "d", "tool_names": ["teleport"]}]}
    good = {"scenarios": [{"name": "desk", "title": "Desk", "description": "d", "tool_names": ["find_book"]}]}
    model = StageModel(decompose=[json.dumps(bad), "```json\n" + json.dumps(good) + "\n```"])
    gen = _gen(model)
    drafts = await gen.decompose(SourceSpec(kind="json", name="lib", tools=DOCS), RNG())
    assert drafts[0].tool_names == ["find_book"]
    assert "unknown tools ['teleport']" in (model.asked("decompose")[1][-1].content or "")


async def test_giving_up_falls_back_or_raises() -> None:
    model = StageModel(decompose=["no"] * 3)
    gen = _gen(model, retries=2)
    groups = {"groups": {"shelf": ["find_book"], "desk": ["lend_book", "wait_forever"]}}
    drafts = await gen.decompose(SourceSpec(kind="python", name="lib", tools=DOCS, data=groups), RNG())
    assert [(d.name, d.tool_names) for d in drafts] == [
        ("shelf", ["find_book"]),
        ("desk", ["lend_book", "wait_forever"]),
    ]
    assert model.model.calls == 3 and gen.stats["decompose"]["fallback"] == 1
    model = StageModel(decompose=["[]", '{"scenario": []}'])
    gen = _gen(model, retries=1)
    with pytest.raises(GenerationError, match="no valid scenario in 2 tries"):
        await gen.decompose(SourceSpec(kind="catalog", name="lib"), RNG())
    assert "holds no JSON object" in (model.asked("decompose")[1][-1].content or "")
    assert gen.stats["decompose"] == {
        "requests": 2,
        "retries": 1,
        "dropped_invalid_json": 1,
        "dropped_invalid_shape": 1,
        "failed": 1,
    }


async def test_invalid_documents_are_dropped() -> None:
    ok = {"name": "find_book", "description": "Find.", "parameters": DOCS[0].parameters}
    model = StageModel(document=[{"tools": [
        {"name": "bad name", "description": "x"},
        {**ok, "name": "lend_book", "parameters": {"type": "array"}},
        {**ok, "name": "wait_forever", "parameters": {"type": "object", "properties": {"s": {"type": "float"}}}},
        {**ok, "name": "not_in_draft"},
        ok, ok,
    ]}])  # fmt: skip
    gen = _gen(model)
    draft = ScenarioDraft(name="d", title="t", description="", tool_names=["find_book", "lend_book", "wait_forever"])
    docs = await gen.document(SourceSpec(kind="catalog", name="lib"), draft, RNG())
    assert [d.name for d in docs] == ["find_book"]
    assert gen.stats["document"] == {"requests": 1, "proposed": 6, "dropped_invalid": 5, "kept": 1}


async def test_source_documents_and_backend_are_kept() -> None:
    """With a real backend, the model may only rewrite descriptions and utterances and propose pools."""
    model = StageModel(
        rewrite=[{"tools": [
            {"name": "find_book", "description": "Look a book up by its exact title.",
             "parameters": {"type": "object", "properties": {}}, "utterances": ["Have you got {title}?", "{nope}"]},
            {"name": "invented", "description": "x"},
        ]}],
        pools=[{"pools": {"title": ["Dune", "Emma", 7], "book_id": ["B1"]}}],
    )  # fmt: skip
    gen = _gen(model)
    backend = Backend(source=SOURCE, state=STATE)
    own = DOCS[0].model_copy(update={"utterances": ["Any books?"]})  # the source's own: kept even without a slot
    source = SourceSpec(kind="python", name="lib", tools=[own, *DOCS[1:]], backend=backend)
    draft = ScenarioDraft(name="d", title="t", description="", tool_names=["find_book", "lend_book"])
    docs = await gen.document(source, draft, RNG())
    assert docs[0].description == "Look a book up by its exact title."
    assert docs[0].parameters == DOCS[0].parameters and docs[0].utterances == ["Any books?", "Have you got {title}?"]
    assert docs[1] == DOCS[1]  # not rewritten: kept as it was
    assert gen.stats["document"]["kept_original"] == 1
    got, pools = await gen.integrate(source, draft, docs, RNG())
    assert got is backend and pools == {"title": ["Dune", "Emma"], "book_id": ["B1"]}
    assert not model.asked("backend")


async def test_ready_scenarios_keep_their_structure_and_backends() -> None:
    """A catalog-like source (ready scenarios, each with its documents and backend) is decomposed as it says;
    the model only rewrites the documents and adds pools."""
    ready = SCENARIO.model_copy(update={"tools": DOCS[:2], "pools": {"title": ["Dune"]}}).model_dump(mode="json")
    groups = [{"name": "library", "title": "Library", "description": "Lending.", "tools": ["find_book", "lend_book"]}]
    source = SourceSpec(kind="catalog", name="toolgen", data={"groups": groups, "scenarios": [ready]})
    model = StageModel(
        rewrite=[{"tools": [{"name": "lend_book", "description": "Hand a book to a member."}]}],
        pools=[{"pools": {"title": ["Emma", "Dune"], "member": ["cy"]}}],
    )
    gen = _gen(model)
    (draft,) = await gen.decompose(source, RNG())
    assert (draft.name, draft.tool_names) == ("library", ["find_book", "lend_book"]) and not model.seen
    docs = await gen.document(source, draft, RNG())
    assert [d.description for d in docs] == ["The find_book tool.", "Hand a book to a member."]
    backend, pools = await gen.integrate(source, draft, docs, RNG())
    assert backend == SCENARIO.backend and pools["title"] == ["Dune", "Emma"] and pools["member"] == ["cy"]
    assert gen.stats["decompose"] == {"from_source": 1}


async def test_a_simulated_backend_is_replaced_when_the_model_writes_a_working_one() -> None:
    simulated = Backend(source="def find_book(title):\n    return 'sim'\n", state={})
    source = SourceSpec(kind="json", name="lib", tools=DOCS[:1], backend=simulated)
    draft = ScenarioDraft(name="lib", title="t", description="", tool_names=["find_book"])
    model = StageModel(backend=[{"source": SOURCE, "state": STATE, "pools": {"title": ["Dune"]}}])
    backend, pools = await _gen(model).integrate(source, draft, DOCS[:1], RNG())
    assert backend.source == SOURCE and pools["title"] == ["Dune"]
    model = StageModel(backend=[{"source": "def other():\n    pass\n"}] * 3)
    gen = _gen(model)
    backend, _ = await gen.integrate(source, draft, DOCS[:1], RNG())
    assert backend == simulated and gen.stats["integrate"]["fallback"] == 1
    model = StageModel(pools=[{"pools": {}}])
    backend, _ = await _gen(model, replace_simulated=False).integrate(source, draft, DOCS[:1], RNG())
    assert backend == simulated and not model.asked("backend")


async def test_a_hanging_backend_is_cut_and_the_error_fed_back() -> None:
    model = StageModel(backend=[{"source": "while True:\n    pass\n"}, {"source": SOURCE, "state": STATE}])
    gen = _gen(model, timeout_s=3)
    draft = ScenarioDraft(name="d", title="t", description="", tool_names=["find_book"])
    backend, _ = await gen.integrate(SourceSpec(kind="catalog", name="lib"), draft, DOCS[:1], RNG())
    assert backend.source == SOURCE
    assert "did not finish loading (timeout" in (model.asked("backend")[1][-1].content or "")
    assert gen.stats["integrate"]["dropped_backend_failed"] == 1


async def test_a_backend_without_a_tool_or_that_crashes_is_dropped() -> None:
    model = StageModel(backend=[
        {"source": "def find_book(title):\n    return 1\n"},
        {"source": "import os\nos._exit(0)\n"},
        {"source": "raise SystemExit(3)\n"},
    ])  # fmt: skip
    gen = _gen(model)
    draft = ScenarioDraft(name="lib_desk", title="t", description="", tool_names=["find_book", "lend_book"])
    with pytest.raises(GenerationError, match="'lib_desk': no proposed backend passed the sandbox check in 3 tries"):
        await gen.integrate(SourceSpec(kind="catalog", name="lib"), draft, DOCS[:2], RNG())
    feedback = [m[-1].content or "" for m in model.asked("backend")[1:]]
    assert "no function for tools lend_book" in feedback[0]
    assert "printed nothing" in feedback[1]
    assert gen.stats["integrate"]["dropped_backend_failed"] == 3 and gen.stats["integrate"]["failed"] == 1


async def test_a_backend_that_reaches_for_files_and_network_is_contained(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        hostile = (
            f"try:\n    open({str(target)!r}, 'w').write('x')\nexcept OSError:\n    pass\n"
            f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n" + SOURCE
        )
        model = StageModel(backend=[{"source": hostile, "state": STATE}, {"source": SOURCE, "state": STATE}])
        gen = _gen(model)
        draft = ScenarioDraft(name="d", title="t", description="", tool_names=["find_book"])
        backend, _ = await gen.integrate(SourceSpec(kind="catalog", name="lib"), draft, DOCS[:1], RNG())
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert backend.source == SOURCE and not target.exists()
    assert "the source failed: " in (model.asked("backend")[1][-1].content or "")


async def test_requests_whose_call_fails_are_dropped() -> None:
    model = StageModel(atoms=[{"requests": [
        {"tool": "find_book", "arguments": {"title": "Dune"}, "text": "Find Dune.", "mentions": {"title": "Dune"}},
        {"tool": "find_book", "arguments": {"title": "Ulysses"}, "text": "Find Ulysses."},  # ValueError
        {"tool": "lend_book", "arguments": {"book_id": "B2", "member": "bo"}, "text": "Lend B2 to bo."},  # lent
        {"tool": "find_book", "arguments": {"title": 5}, "text": "Find 5."},  # schema
        {"tool": "find_book", "arguments": {"title": "Dune", "year": 1965}, "text": "Find Dune of 1965."},
        {"tool": "burn_book", "arguments": {}, "text": "Burn it."},
        {"tool": "find_book", "arguments": {"title": "Emma"}, "text": "Find that novel."},  # value not stated
        {"tool": "wait_forever", "arguments": {"seconds": 1}, "text": "Wait 1 second."},  # hangs: cut
        {"tool": "find_book", "arguments": {"title": "Emma"}, "text": "Is emma in?", "mentions": {"title": "Jane"}},
        "not an object",
    ]}])  # fmt: skip
    gen = _gen(model, timeout_s=2)
    atoms = await gen.atoms(SCENARIO, 10, RNG())
    assert [a.text for a in atoms] == ["Find Dune.", "Is emma in?"]
    assert atoms[1].mentions == {"title": "emma"}  # a wrong mention falls back to the value, as the text writes it
    assert gen.stats["atoms"] == {
        "requests": 1, "proposed": 10, "dropped_call_value_error": 2, "dropped_schema": 2, "dropped_unknown_tool": 1,
        "dropped_value_not_stated": 1, "dropped_call_timeout": 1, "dropped_invalid": 1, "kept": 2,
    }  # fmt: skip


async def test_all_calls_failing_asks_again_with_the_errors() -> None:
    bad = {"requests": [{"tool": "find_book", "arguments": {"title": "Ulysses"}, "text": "Find Ulysses."}]}
    good = {"requests": [{"tool": "find_book", "arguments": {"title": "Emma"}, "text": "Find Emma.", "mentions": {}}]}
    model = StageModel(atoms=[bad, good, good])
    gen = _gen(model)
    atoms = await gen.atoms(SCENARIO, 1, RNG())
    assert [a.call.arguments for a in atoms] == [{"title": "Emma"}]
    assert "no book titled 'Ulysses'" in (model.asked("atoms")[1][-1].content or "")
    assert await gen.atoms(SCENARIO, 0, RNG()) == []


async def test_requests_are_asked_in_batches_without_repeats() -> None:
    def ask(titles: list[str]) -> dict[str, Any]:
        return {"requests": [{"tool": "find_book", "arguments": {"title": t}, "text": f"Find {t}."} for t in titles]}

    model = StageModel(atoms=[ask(["Dune", "Emma"]), ask(["Emma", "dune"]), ask(["Dune"])])
    gen = LLMGenerator(model.model, batch=2, retries=0, timeout_s=5)
    atoms = await gen.atoms(SCENARIO, 5, RNG())
    assert [a.text for a in atoms] == ["Find Dune.", "Find Emma.", "Find dune."]  # the third round repeats only
    second = model.asked("atoms")[1][1].content or ""
    assert "Write 2 different requests" in second and "Already written (write different ones):\n- Find Dune." in second
    assert gen.stats["atoms"]["dropped_duplicate"] == 2 and gen.stats["atoms"]["failed"] == 1
    assert gen.config == {"model": "scripted", "prompts": 1, "retries": 0, "temperature": 0.7, "max_tokens": 4096,
                          "batch": 2, "replace_simulated": True, "json_mode": False}  # fmt: skip


async def test_paraphrases_keep_every_stated_value() -> None:
    text = "Book 2 nights at Hotel Lumen from 2026-05-01 for ann@example.org."
    model = StageModel(paraphrase=[{"paraphrases": [
        text,
        "  Book 2 nights at  Hotel Lumen from 2026-05-01 for ann@example.org. ",
        "Reserve two nights at Hotel Lumen from 2026-05-01 for ann@example.org.",
        "Please get me 2 nights at the Lumen from 2026-05-01 for ann@example.org.",
        "Could you reserve Hotel Lumen for 2 nights starting 2026-05-01? It's for ann@example.org.",
        "For ann@example.org: 2 nights at Hotel Lumen, arriving 2026-05-01.",
        "For ann@example.org: 2 nights at Hotel Lumen, arriving 2026-05-01.",
        7,
    ]}])  # fmt: skip
    gen = _gen(model)
    kept = await gen.paraphrase(text, 5, RNG())
    assert kept == [
        "Could you reserve Hotel Lumen for 2 nights starting 2026-05-01? It's for ann@example.org.",
        "For ann@example.org: 2 nights at Hotel Lumen, arriving 2026-05-01.",
    ]
    assert gen.stats["paraphrase"]["dropped_value_lost"] == 2
    assert gen.stats["paraphrase"]["dropped_identical"] == 4  # the same, the same up to spaces, a repeat, not text
    model = StageModel(paraphrase=[{"paraphrases": ["Reserve two nights at the Lumen, from May 1st."]}])
    assert await _gen(model).paraphrase(text, 1, RNG(), keep=["Lumen"]) == [
        "Reserve two nights at the Lumen, from May 1st."
    ]


def test_stated_values_and_extraction() -> None:
    values = stated_values('Send "hello there" to Bob at 10:30 on 2026-05-01. Then call order ORD-77.')
    assert {"hello there", "Bob", "10:30", "2026-05-01", "ORD-77"} <= set(values)
    assert "Send" not in values and "Then" not in values
    assert keeps_values("call ord-77 now", ["ORD-77"]) == [] and keeps_values("call ORD-771", ["ORD-77"]) == ["ORD-77"]
    assert extract_json('Here you go:\n{"a": [1, 2]} hope it helps') == {"a": [1, 2]}
    with pytest.raises(ValueError, match="no JSON object"):
        extract_json("[1, 2]")
    with pytest.raises(ValueError, match="not valid JSON"):
        extract_json('{"a": ')


async def test_one_bad_call_costs_only_itself() -> None:
    """A call that ends the interpreter, or hangs while swallowing the timer, stops the program; the calls
    after it are run again in a fresh one."""
    source = """
import os, time
def ok(x):
    return x
def leave(x):
    os._exit(0)
def stubborn(x):
    while True:
        try:
            time.sleep(10)
        except BaseException:
            pass
"""
    backend = Backend(source=source, state={})
    calls = [Call(name=n, arguments={"x": i}) for i, n in enumerate(["ok", "leave", "ok", "stubborn", "ok", "nope"])]
    checks = await run_calls(backend, calls, timeout_s=2)
    assert [c.kind for c in checks] == ["ok", "missing", "ok", "timeout", "ok", "exception"]
    assert [c.result for c in checks if c.ok] == [0, 2, 4]
    assert "no tool 'nope'" in (checks[5].error or "")
