"""Validation against a document's schemas: OpenAPI's dialect (3.0 `nullable`, 3.1 type
lists, 2.0 body parameters), `$ref`s across files and cycles, JSON paths in the errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from reqon.openapi import cache
from reqon.openapi.cache import load_file
from reqon.openapi.validation import DocumentSchemas, Problem

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    cache._memo.clear()


def schemas(name: str) -> tuple[DocumentSchemas, dict]:
    document = load_file(DOCS / name)
    return DocumentSchemas(document), document.operations


def test_openapi_30_nullable_and_all_of() -> None:
    found, ops = schemas("pets.yaml")
    check = found.response(ops["getPet"], 200, "application/json; charset=utf-8")
    assert check is not None
    assert check.problems({"id": 1, "name": "Tom", "kind": "cat", "tag": None}) == []  # nullable
    assert check.problems({"id": "1", "name": "", "kind": "cow"}) == [
        Problem("$.name", "'' should be non-empty"), Problem("$.kind", "'cow' is not one of ['cat', 'dog']"),
        Problem("$.id", "'1' is not of type 'integer'")]
    assert found.response(ops["getPet"], 404, None) is None  # undocumented status: nothing to check


def test_openapi_31_type_lists() -> None:
    found, ops = schemas("pets31.json")
    check = found.response(ops["getPet"], 200, None)
    assert check is not None
    assert check.problems({"id": 1, "name": "x", "tag": None}) == []
    assert check.problems({"id": 1, "name": "x", "tag": 5}) == [Problem("$.tag", "5 is not of type 'string', 'null'")]


def test_a_cyclic_schema_in_another_file() -> None:
    found, ops = schemas("split/main.yaml")
    check = found.response(ops["getTree"], 200, "application/json")
    assert check is not None
    tree = {"name": "a", "children": [{"name": "b", "children": [{"name": 3}]}]}
    assert check.problems(tree) == [Problem("$.children[0].children[0].name", "3 is not of type 'string'")]


def test_requests_swagger_20_body_and_required_parameters() -> None:
    found, ops = schemas("swagger2.yaml")
    assert found.request(ops["createPet"]).problems({}, {}, {}, {"id": "z"}) == [
        "body $: 'name' is a required property", "body $.id: 'z' is not of type 'integer'"]
    assert found.request(ops["createPet"]).problems({}, {}, {}, None) == ["the request body is required"]
    assert found.request(ops["getPet"]).problems({}, {}, {}, None) == ["required path parameter 'petId' is missing"]
    assert found.request(ops["getPet"]).problems({}, {"petId": 3}, {}, None) == []


def test_url_parameters_are_read_as_the_json_they_spell_only_for_the_mock() -> None:
    found, ops = schemas("pets.yaml")
    checks = found.request(ops["listPets"])
    assert checks.problems({"limit": "5"}, {}, {}, None) == ["query parameter 'limit': '5' is not of type 'integer'"]
    assert checks.problems({"limit": "5"}, {}, {}, None, from_text=True) == []
    assert checks.problems({"limit": "99"}, {}, {}, None, from_text=True) == [
        "query parameter 'limit': 99 is greater than the maximum of 50"]
