"""LLMGenerator over HTTP: the real local OpenAI-compatible server (scripted answers per stage), reached through
`openai-compatible:URL:NAME`, drives the whole build pipeline; every kept task is verified by execution."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hone.envs.build import SourceSpec, abuild
from hone.envs.build._inputs import load_source
from hone.envs.build._llm import LLMGenerator
from hone.models import aclose_model, resolve_model
from hone.testing import OpenAIServer, Policy, scripted_policy

SPECS = Path(__file__).parent.parent / "envs" / "build" / "specs"
STAGES = {
    "Split this tool set": "decompose",
    "Write the tool documents": "document",
    "Improve these tool descriptions": "rewrite",
    "Write the Python backend": "backend",
    "Propose argument values": "pools",
    "different requests a user could make": "atoms",
}

BACKEND = """
def find_book(title):
    for book_id, book in state["books"].items():
        if book["title"].lower() == title.lower():
            return book_id
    raise ValueError(f"no book titled {title!r}")

def lend_book(book_id, member):
    book = state["books"].get(book_id)
    if book is None:
        raise ValueError(f"unknown book {book_id}")
    if book["lent_to"]:
        raise ValueError(f"{book_id} is already lent")
    book["lent_to"] = member
    return f"{book_id} lent to {member}"
"""
STATE = {"books": {"B1": {"title": "Dune", "lent_to": None}, "B2": {"title": "Emma", "lent_to": None}}}


def stage_policy(**replies: Sequence[Any]) -> tuple[Policy, list[str]]:
    """Each stage answers from its own `scripted_policy` (so concurrent stages cannot steal each other's
    answers); also returns the log of stages asked, in order."""
    policies = {
        s: scripted_policy([r if isinstance(r, str) else json.dumps(r) for r in rs]) for s, rs in replies.items()
    }
    asked: list[str] = []

    def policy(request: dict[str, Any]) -> dict[str, Any]:
        prompt = str(request["messages"][1]["content"])
        stage = next(s for key, s in STAGES.items() if key in prompt)
        asked.append(stage)
        return policies[stage](request)

    return policy, asked


@pytest.fixture
def tmp_out(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "built"


def _requests(*rows: tuple[str, dict[str, Any], str]) -> dict[str, Any]:
    return {"requests": [{"tool": t, "arguments": a, "text": x} for t, a, x in rows]}


async def test_a_world_written_by_the_model_builds_and_verifies(tmp_out: Path) -> None:
    policy, asked = stage_policy(
        decompose=[{"scenarios": [{"name": "lending", "title": "Lending desk", "description": "Lend books.",
                                   "tool_names": ["find_book", "lend_book"]}]}],
        document=[{"tools": [
            {"name": "find_book", "description": "The id of a book, by title.", "effect": "read",
             "parameters": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
             "utterances": ["Which id has {title}?"]},
            {"name": "lend_book", "description": "Lend a book to a member.", "effect": "write",
             "parameters": {"type": "object", "properties": {"book_id": {"type": "string"},
                            "member": {"type": "string"}}, "required": ["book_id", "member"]}},
        ]}],
        backend=[{"source": "while True: pass"}, {"source": BACKEND, "state": STATE,
                                      "pools": {"title": ["Dune", "Emma"], "member": ["ann", "bo"]}}],
        atoms=[_requests(
            ("find_book", {"title": "Dune"}, "What is the id of Dune?"),
            ("find_book", {"title": "Emma"}, "I need the catalogue id of Emma."),
            ("find_book", {"title": "Ulysses"}, "Find Ulysses."),
            ("lend_book", {"book_id": "B1", "member": "ann"}, "Lend B1 to ann, please."),
            ("lend_book", {"book_id": "B2", "member": "bo"}, "bo would like to take B2 home."),
            ("lend_book", {"book_id": "B2", "member": 7}, "Lend B2 to 7."),
        )],
    )  # fmt: skip
    with OpenAIServer(policy) as server:
        model = resolve_model(f"openai-compatible:{server.base_url}:scripted-llm")
        gen = LLMGenerator(model, temperature=0.2, timeout_s=5, batch=20, json_mode=True)
        source = SourceSpec(kind="catalog", name="library", description="A small lending library.")
        try:
            manifest = await abuild(source, tmp_out, generator=gen, tasks_per_level={1: 3, 2: 0, 5: 2, 6: 1})
        finally:
            await aclose_model(model)
        sent = server.requests
    assert sent and all(r["response_format"] == {"type": "json_object"} and r["temperature"] == 0.2 for r in sent)
    assert len({r["seed"] for r in sent}) == len(sent)  # each question its own seed
    assert manifest.generator == "llm" and manifest.tasks > 0
    assert asked[:4] == ["decompose", "document", "backend", "backend"]  # the hanging backend was asked again
    assert gen.stats["integrate"]["dropped_backend_failed"] == 1
    assert gen.stats["atoms"]["dropped_call_value_error"] == 1 and gen.stats["atoms"]["dropped_schema"] == 1
    tasks = [json.loads(line) for line in (tmp_out / "tasks.jsonl").read_text().splitlines()]
    assert tasks and all(t["final_state"] for t in tasks)  # every task verified by execution
    calls = {c["name"] for t in tasks for step in t["reference"] for c in step}
    assert calls <= {"find_book", "lend_book"}
    stored = json.loads((tmp_out / "hone_env.json").read_text())
    assert "while True" not in stored["scenarios"][0]["backend"]["source"]


async def test_a_python_spec_keeps_its_backend(tmp_out: Path) -> None:
    source = load_source(SPECS / "library.py")
    policy, asked = stage_policy(
        decompose=[{"scenarios": [{"name": "desk", "title": "Desk", "description": "Find and lend books.",
                                   "tool_names": ["book_details", "borrow_book", "no_such_tool"]}]},
                   {"scenarios": [{"name": "desk", "title": "Desk", "description": "Find and lend books.",
                                   "tool_names": ["book_details", "borrow_book"]}]}],
        rewrite=[{"tools": [{"name": "book_details", "description": "Title, author and free copies of one book.",
                             "utterances": ["Tell me about {book_id}."]}]}],
        pools=[{"pools": {"book_id": ["B1", "B2", "B3"], "member_id": ["M1", "M2"]}}],
        atoms=[_requests(
            ("book_details", {"book_id": "B1"}, "Tell me about B1."),
            ("book_details", {"book_id": "B9"}, "Tell me about B9."),
            ("borrow_book", {"member_id": "M1", "book_id": "B1"}, "Member M1 borrows B1."),
            ("borrow_book", {"member_id": "M2", "book_id": "B3"}, "M2 wants B3."),
        )],
    )  # fmt: skip
    with OpenAIServer(policy) as server:
        model = resolve_model(f"openai-compatible:{server.base_url}:scripted-llm")
        gen = LLMGenerator(model, timeout_s=5, batch=20)
        try:
            manifest = await abuild(source, tmp_out, generator=gen, tasks_per_level={1: 2, 6: 1})
            before = len(asked)
            again = await abuild(source, tmp_out, generator=LLMGenerator(model, timeout_s=5, batch=20),
                                 tasks_per_level={1: 2, 6: 1})  # fmt: skip
        finally:
            await aclose_model(model)
    assert len(asked) == before and again == manifest  # a rebuild reads every stage back: no model call
    assert "backend" not in asked and asked.count("decompose") == 2
    stored = json.loads((tmp_out / "hone_env.json").read_text())
    (scenario,) = stored["scenarios"]
    assert scenario["backend"] == source.backend.model_dump() if source.backend else False
    docs = {d["name"]: d for d in scenario["tools"]}
    assert docs["book_details"]["description"] == "Title, author and free copies of one book."
    assert docs["borrow_book"] == next(t for t in source.tools if t.name == "borrow_book").model_dump()
    assert gen.stats["atoms"]["kept"] == 2 and gen.stats["atoms"]["dropped_call_value_error"] == 2
    assert manifest.tasks >= 2


def test_hone_env_build_with_the_llm_generator(tmp_out: Path) -> None:
    """`hone env build SPEC -o DIR --generator llm --model openai-compatible:URL:NAME` end to end."""
    from typer.testing import CliRunner

    from hone.cli import app

    policy, asked = stage_policy(
        decompose=[{"scenarios": [{"name": "desk", "title": "Desk", "description": "Look books up.",
                                   "tool_names": ["book_details", "find_books"]}]}],
        rewrite=["not JSON at all", {"tools": [{"name": "find_books", "description": "Book ids of one genre.",
                                                "utterances": ["Which {genre} books are there?"]}]}],
        pools=[{"pools": {"book_id": ["B1", "B2"]}}],
        atoms=[_requests(
            ("book_details", {"book_id": "B1"}, "Tell me about B1."),
            ("book_details", {"book_id": "B2"}, "Who wrote B2?"),
            ("find_books", {"genre": "classic"}, "Which classic books are there?"),
            ("find_books", {"genre": "western"}, "Any western books?"),
        )],
    )  # fmt: skip
    with OpenAIServer(policy) as server:
        args = ["env", "build", str(SPECS / "library.py"), "-o", str(tmp_out), "--generator", "llm"]
        args += ["--model", f"openai-compatible:{server.base_url}:scripted-llm", "--tasks-per-level", "2", "--json"]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stdout + result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["generator"] == "llm" and manifest["tasks"] > 0
    assert asked.count("rewrite") == 2 and "backend" not in asked  # broken JSON asked again; real backend kept
    stored = json.loads((tmp_out / "hone_env.json").read_text())
    docs = {d["name"]: d for d in stored["scenarios"][0]["tools"]}
    assert docs["find_books"]["description"] == "Book ids of one genre."
    tasks = [json.loads(line) for line in (tmp_out / "tasks.jsonl").read_text().splitlines()]
    assert all(t["final_state"] for t in tasks)
    assert not any(c["arguments"].get("genre") == "western" for t in tasks for s in t["reference"] for c in s)
