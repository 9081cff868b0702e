"""OpenAPI 3 documents as a build input: operations -> tools, a local backend run in the sandbox, refused constructs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from _inputs_sandbox import run_calls
from pydantic import BaseModel

from hone.core import ConfigError
from hone.envs.build._inputs import load_source

SPECS = Path(__file__).parent / "specs"


@pytest.fixture(scope="module")
def petstore():  # type: ignore[no-untyped-def]
    return load_source(SPECS / "petstore.yaml")


def test_operations_become_tools(petstore) -> None:  # type: ignore[no-untyped-def]
    assert petstore.kind == "openapi" and petstore.name == "pet_store"
    assert {t.name: t.source_name for t in petstore.tools} == {
        "listPets": "GET /pets",
        "createPet": "POST /pets",
        "getPet": "GET /pets/{petId}",
        "patch_pets_pet_id": "PATCH /pets/{petId}",  # no operationId: a slug of METHOD path
        "deletePet": "DELETE /pets/{petId}",
        "listOwnerPets": "GET /owners/{ownerId}/pets",
        "getOwner": "GET /owners/{ownerId}",
    }
    tools = {t.name: t for t in petstore.tools}
    listing = tools["listPets"].parameters
    assert set(listing["properties"]) == {"species", "limit"}  # the header parameter is not an argument
    create = tools["createPet"].parameters  # the body's $ref resolved and flattened
    assert set(create["properties"]) == {"name", "species", "price", "vaccinated"}
    assert create["required"] == ["name", "species"]
    assert create["properties"]["vaccinated"] == {"type": "boolean", "default": False}  # no generated `title` noise
    patch = tools["patch_pets_pet_id"].parameters  # path-level parameter + body properties in one schema
    assert set(patch["properties"]) == {"petId", "name", "price"} and patch["required"] == ["petId"]
    assert patch["properties"]["petId"]["type"] == "integer"
    assert [t.effect for t in petstore.tools] == ["read", "write", "read", "write", "write", "read", "read"]
    assert petstore.data["groups"] == {
        "pets": ["listPets", "createPet", "getPet", "patch_pets_pet_id", "deletePet"],
        "owners": ["listOwnerPets", "getOwner"],
    }
    assert all(2 <= len(t.utterances) <= 4 for t in petstore.tools)


def test_seeded_records_and_pools(petstore) -> None:  # type: ignore[no-untyped-def]
    pets = petstore.backend.state["collections"]["pets"]
    assert [p["id"] for p in pets] == [1, 2, 3]
    assert pets[0]["name"] == "Rex"  # the schema's example
    assert {p["species"] for p in pets} == {"dog", "cat", "bird"}  # the enum, in turn
    assert set(pets[0]) == {"id", "name", "species", "price", "vaccinated", "status", "ownerId"}  # allOf; owner
    owners = petstore.backend.state["collections"]["owners"]
    assert [o["id"] for o in owners] == ["owner-1", "owner-2", "owner-3"]
    assert {p["ownerId"] for p in pets} <= {o["id"] for o in owners}
    pools = petstore.data["pools"]
    assert pools["petId"] == [1, 2, 3] and pools["ownerId"] == ["owner-1", "owner-2", "owner-3"]
    assert pools["name"][0] == "Rex" and pools["species"] == ["dog", "cat", "bird"]


def test_local_backend_in_the_sandbox(petstore) -> None:  # type: ignore[no-untyped-def]
    crud, missing, wrong = run_calls(
        petstore,
        [
            ("listPets", {"species": "cat"}),
            ("createPet", {"name": "Tom", "species": "cat", "price": 12.5}),
            ("patch_pets_pet_id", {"petId": 4, "price": 9.5}),
            ("getPet", {"petId": 4}),
            ("deletePet", {"petId": 1}),
            ("listPets", {"limit": 2}),
            ("listOwnerPets", {"ownerId": "owner-2"}),
        ],
        [("getPet", {"petId": 7})],
        [("createPet", {"name": "Tom", "species": "cow"})],
    )
    assert crud.error is None and crud.results is not None
    listed, created, patched, fetched, deleted, page, owned = (step[0] for step in crud.results)
    assert [p["species"] for p in listed] == ["cat"]
    assert created == {"name": "Tom", "species": "cat", "price": 12.5, "vaccinated": False, "id": 4}  # + default
    assert patched["price"] == 9.5 and fetched == patched
    assert deleted == {"deleted": 1}
    assert [p["id"] for p in page] == [2, 3]
    assert [p["ownerId"] for p in owned] == ["owner-2"]
    assert [p["id"] for p in crud.state["collections"]["pets"]] == [2, 3, 4]
    assert missing.error == "getPet: value_error: no pet with id 7"
    assert wrong.error is not None and "species must be one of ['dog', 'cat', 'bird']" in wrong.error


def _doc() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Notes"},
        "paths": {
            "/notes": {
                "post": {
                    "operationId": "createNote",
                    "summary": "Create a note.",
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/N"}}}},
                    "responses": {"201": {"description": "ok"}},
                }
            }
        },
        "components": {"schemas": {"N": {"type": "object", "properties": {"text": {"type": "string"}}}}},
    }


def _post(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["paths"]["/notes"]["post"]  # type: ignore[no-any-return]


def _set(doc: dict[str, Any], case: str) -> None:
    body = _post(doc)["requestBody"]["content"]
    if case == "external_ref":
        body["application/json"]["schema"] = {"$ref": "other.yaml#/N"}
    elif case == "callbacks":
        _post(doc)["callbacks"] = {"done": {}}
    elif case == "one_of":
        doc["components"]["schemas"]["N"] = {"oneOf": [{"type": "object"}, {"type": "string"}]}
    elif case == "form_body":
        _post(doc)["requestBody"]["content"] = {"multipart/form-data": body["application/json"]}
    elif case == "cookie":
        _post(doc)["parameters"] = [{"name": "session", "in": "cookie", "schema": {"type": "string"}}]
    elif case == "swagger":
        del doc["openapi"]
        doc["swagger"] = "2.0"
    elif case == "recursive":
        doc["components"]["schemas"]["N"]["properties"]["child"] = {"$ref": "#/components/schemas/N"}
    elif case == "collection_delete":
        doc["paths"]["/notes"]["delete"] = {"responses": {"204": {"description": "gone"}}}


REFUSED = {
    "external_ref": "#/paths/~1notes/post/requestBody/content/application~1json/schema: external $ref 'other.yaml#/N'",
    "callbacks": "#/paths/~1notes/post/callbacks: callbacks are not supported",
    "one_of": "#/components/schemas/N/oneOf: oneOf with several alternatives is not supported",
    "form_body": "#/paths/~1notes/post/requestBody/content: non-JSON request body (multipart/form-data)",
    "cookie": "#/paths/~1notes/post/parameters/0: cookie parameter 'session' is not supported",
    "swagger": "#/openapi: OpenAPI version '2.0' is not supported",
    "recursive": "recursive or too deeply nested schema",
    "collection_delete": "#/paths/~1notes/delete: DELETE on the collection '/notes' is not supported",
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_constructs_name_their_pointer(tmp_path: Path, case: str) -> None:
    doc = copy.deepcopy(_doc())
    path = tmp_path / "api.json"
    path.write_text(json.dumps(doc))
    assert [t.name for t in load_source(path).tools] == ["createNote"]  # the base document is fine
    _set(doc, case)
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as info:
        load_source(path)
    message = str(info.value)
    assert message.startswith("api.json: ") and REFUSED[case] in message and "\n" not in message


def test_untagged_operations_group_by_collection(tmp_path: Path) -> None:
    doc = _doc()
    doc["paths"]["/tags"] = {"get": {"summary": "List tags.", "tags": ["meta", "other"], "responses": {}}}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(doc))
    assert load_source(path).data["groups"] == {"notes": ["createNote"], "meta": ["get_tags"]}
    del doc["paths"]["/tags"]
    path.write_text(json.dumps(doc))
    assert "groups" not in load_source(path).data  # no tags at all: one scenario


def test_nullable_union_and_yaml_errors(tmp_path: Path) -> None:
    doc = _doc()
    doc["components"]["schemas"]["N"]["properties"]["tag"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    path = tmp_path / "api.json"
    path.write_text(json.dumps(doc))
    assert load_source(path).tools[0].parameters["properties"]["tag"] == {"type": "string"}
    bad = tmp_path / "api.yaml"
    bad.write_text("openapi: 3.0.0\npaths: {/a: [\n")
    with pytest.raises(ConfigError, match=r"^api\.yaml: not valid YAML at line \d+; fix the syntax$"):
        load_source(bad)


class TodoIn(BaseModel):
    title: str
    done: bool = False
    note: str | None = None


class Todo(TodoIn):
    id: int


def test_a_fastapi_generated_document(tmp_path: Path) -> None:
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI(title="Todo API")

    @app.get("/todos", response_model=list[Todo])
    def list_todos(done: bool | None = None) -> list[Todo]:
        return []

    @app.post("/todos", response_model=Todo)
    def create_todo(todo: TodoIn) -> Todo:
        return Todo(id=1, **todo.model_dump())

    @app.get("/todos/{todo_id}", response_model=Todo)
    def get_todo(todo_id: int) -> Todo:
        return Todo(id=todo_id, title="")

    path = tmp_path / "todo.json"
    path.write_text(json.dumps(app.openapi()))  # 422 responses, anyOf-with-null, titles, $refs
    spec = load_source(path)
    names = [t.name for t in spec.tools]
    assert names == ["list_todos_todos_get", "create_todo_todos_post", "get_todo_todos__todo_id__get"]
    assert spec.tools[1].parameters["properties"]["note"] == {"type": "string"}
    (run,) = run_calls(spec, [(names[1], {"title": "milk"}), (names[0], {"done": False}), (names[2], {"todo_id": 4})])
    assert run.error is None and run.results is not None
    assert run.results[0] == [{"done": False, "title": "milk", "id": 4}]
    assert {"done": False, "title": "milk", "id": 4} in run.results[1][0] and run.results[2] == run.results[0]
