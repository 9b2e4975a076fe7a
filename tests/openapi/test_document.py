"""Loading documents (§3.1.6): versions, formats, references across files and cycles, the
errors a bad document gets, and the content-hash cache."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reqon.openapi import cache
from reqon.openapi.cache import load_file
from reqon.openapi.document import DocumentError

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    cache._memo.clear()
    return tmp_path / "xdg" / "reqon" / "openapi"


def test_openapi_30_yaml_index_base_url_and_security() -> None:
    doc = load_file(DOCS / "pets.yaml")
    assert doc.version == "3.0"
    assert doc.base_url == "https://pets.example/v2"  # server variables at their defaults
    assert set(doc.operations) == {"listPets", "createPet", "getPet", "owners/get-pet"}
    get_pet = doc.operations["getPet"]
    assert (get_pet.method, get_pet.path, get_pet.path_parameters) == ("GET", "/pets/{petId}", ("petId",))
    assert get_pet.security == (("token",),)  # inherited from the top level
    assert doc.operations["owners/get-pet"].security == ()  # documented as open
    assert doc.schemes == {"token": "bearer"}


def test_openapi_31_json_and_swagger_20() -> None:
    v31 = load_file(DOCS / "pets31.json")
    assert (v31.version, v31.base_url, list(v31.operations)) == ("3.1", "http://127.0.0.1:9/api", ["getPet"])
    v2 = load_file(DOCS / "swagger2.yaml")
    assert (v2.version, v2.base_url) == ("2.0", "http://pets.example:8080/base")
    assert v2.operations["createPet"].method == "POST"


def test_references_to_other_files_and_a_cycle() -> None:
    doc = load_file(DOCS / "split" / "main.yaml")
    tree = doc.operations["getTree"]
    assert tree.path_parameters == ("treeId",)  # the parameter lives in schemas.yaml, via paths.yaml
    assert sorted(Path(uri).name for uri in doc.others) == ["paths.yaml", "schemas.yaml"]


@pytest.mark.parametrize(("name", "pointer", "problem"), [
    ("missing.yaml", "", "cannot read it: No such file or directory"),
    ("broken.yaml", "", "not valid YAML or JSON: found unexpected end of stream (line 3, column 1)"),
    ("not-openapi.yaml", "", "not an OpenAPI document: no 'openapi' or 'swagger' field"),
    ("bad-shape.yaml", "/paths/~1items/get", '"responses" is a required property'),
    ("dangling-ref.yaml", "/paths/~1items~1{id}/get", "unresolvable reference"),
])
def test_a_bad_document_names_itself_the_pointer_and_the_problem(name: str, pointer: str, problem: str) -> None:
    with pytest.raises(DocumentError) as caught:
        load_file(DOCS / name, name)
    assert caught.value.location == name
    assert caught.value.pointer == pointer
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"OpenAPI document {name}")


def test_a_duplicate_operation_id_is_an_error(tmp_path: Path) -> None:
    text = (DOCS / "pets.yaml").read_text().replace("operationId: getPet", "operationId: listPets")
    (tmp_path / "dup.yaml").write_text(text)
    with pytest.raises(DocumentError, match="operationId 'listPets' is used twice"):
        load_file(tmp_path / "dup.yaml")


def test_the_cache_answers_the_second_load_without_parsing(own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_file(DOCS / "pets.yaml")
    assert sorted(p.suffix for p in own_cache.iterdir()) == [".contents", ".index"]
    cache._memo.clear()

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed although cached")
    monkeypatch.setattr(cache, "parse", no_parsing)
    second = load_file(DOCS / "pets.yaml")
    assert second.operations == first.operations
    assert second.base_url == first.base_url and second.schemes == first.schemes
    assert second.root["paths"]["/pets"]["get"]["operationId"] == "listPets"  # contents, read lazily


def test_editing_a_referenced_file_invalidates_the_cache(tmp_path: Path) -> None:
    shutil.copytree(DOCS / "split", tmp_path / "split")
    assert load_file(tmp_path / "split" / "main.yaml").operations["getTree"].path_parameters == ("treeId",)
    cache._memo.clear()
    schemas = tmp_path / "split" / "schemas.yaml"
    schemas.write_text(schemas.read_text().replace("name: treeId", "name: forestId"))
    assert load_file(tmp_path / "split" / "main.yaml").operations["getTree"].path_parameters == ("forestId",)


def test_an_unwritable_cache_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    assert "getPet" in load_file(DOCS / "pets.yaml").operations


def test_a_missing_referenced_file_and_a_url_documents_references_are_named(tmp_path: Path) -> None:
    from reqon.openapi.cache import load_bytes
    shutil.copytree(DOCS / "split", tmp_path / "split")
    (tmp_path / "split" / "schemas.yaml").unlink()
    with pytest.raises(DocumentError) as caught:
        load_file(tmp_path / "split" / "main.yaml", "main.yaml")
    assert caught.value.pointer == "/paths/~1trees~1{treeId}/get"
    assert caught.value.problem.startswith("cannot read the referenced file file://")
    assert caught.value.problem.endswith("schemas.yaml: No such file or directory")
    with pytest.raises(DocumentError, match="followed for local documents only: http://api.example/paths.yaml"):
        load_bytes((DOCS / "split" / "main.yaml").read_bytes(), "http://api.example/main.yaml",
                   "http://api.example/main.yaml", local=False)


def test_a_lost_contents_file_is_parsed_again(own_cache: Path) -> None:
    load_file(DOCS / "split" / "main.yaml")
    cache._memo.clear()
    for lost in own_cache.glob("*.contents"):
        lost.unlink()
    doc = load_file(DOCS / "split" / "main.yaml")
    assert doc.root["paths"]["/trees/{treeId}"] == {"$ref": "paths.yaml#/tree"}
    assert any(uri.endswith("schemas.yaml") for uri in doc.contents)
