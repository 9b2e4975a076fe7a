"""`call Source.operationId` (§4.2) end to end: a mission whose source is an OpenAPI
document, run against a real server on 127.0.0.1 that serves the document's operations
and logs every request it saw; and the errors of a document that cannot be used."""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reqon.demo.server import ThreadedServer
from reqon.openapi import cache
from tests.conftest import RunResult, run_mission_path

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"
ROOT = Path(__file__).resolve().parents[2]
PETS = [{"id": n, "name": f"pet-{n}", "kind": "cat" if n % 2 else "dog", "tag": None} for n in range(1, 8)]


class PetServer:
    """The operations of tests/fixtures/openapi/pets.yaml under /v2, plus the document itself."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, str | None]] = []  # method, path?query, Authorization
        self.created: list[Any] = []
        app = web.Application()
        app.router.add_get("/v2/pets", self.list_pets)
        app.router.add_post("/v2/pets", self.create_pet)
        app.router.add_get("/v2/pets/{petId}", self.get_pet)
        app.router.add_get("/v2/owners/{owner}/pets/{name}", self.owner_pet)
        app.router.add_get("/docs/pets.yaml", self.document)
        self.server = ThreadedServer(app)
        self.url = self.server.url

    def _seen(self, request: web.Request) -> None:
        self.log.append((request.method, request.path_qs, request.headers.get("Authorization")))

    async def list_pets(self, request: web.Request) -> web.Response:
        self._seen(request)
        page, limit = int(request.query.get("page", 1)), int(request.query.get("limit", 3))
        return web.json_response(PETS[(page - 1) * limit: page * limit])

    async def create_pet(self, request: web.Request) -> web.Response:
        self._seen(request)
        body = await request.json()
        self.created.append(body)
        return web.json_response({"id": 100 + len(self.created), **body}, status=201)

    async def get_pet(self, request: web.Request) -> web.Response:
        self._seen(request)
        pet_id = int(request.match_info["petId"])
        if pet_id == 13:  # does not match the document: id is a string, kind unknown
            return web.json_response({"id": "13", "name": "unlucky", "kind": "cow"})
        return web.json_response(PETS[pet_id - 1])

    async def owner_pet(self, request: web.Request) -> web.Response:
        self._seen(request)
        return web.json_response({"id": 1, "name": request.match_info["name"], "kind": "cat"})

    async def document(self, request: web.Request) -> web.Response:
        return web.Response(body=(DOCS / "pets.yaml").read_bytes(), content_type="application/yaml")


@pytest.fixture
def pets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PetServer]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PET_TOKEN", "s3cret-token")
    cache._memo.clear()
    shutil.copy(DOCS / "pets.yaml", tmp_path / "pets.yaml")
    server = PetServer()
    yield server
    server.server.close()


def run(tmp_path: Path, text: str, url: str, *args: str) -> RunResult:
    mission = tmp_path / "mission.vague"
    mission.write_text(text, encoding="utf-8")
    result = run_mission_path(mission, tmp_path, *args, url=url)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    return result


MISSION = """
mission Pets {
  source Api from "pets.yaml" { auth: bearer { token: env("PET_TOKEN") }, base: env("DEMO_URL") + "/v2" }
  store pets: memory("pets")
  store made: memory("made")
  store owned: memory("owned")
  action Load {
    call Api.listPets { params: { limit: 3, kind: "cat" }, paginate: page(page, 3) }
    store response -> pets
    for pet in pets where .id == 3 {
      let petId = pet.id
      call Api.getPet
      store response -> pets
    }
    call Api.createPet { body: { name: "Rex", kind: "dog" } }
    store response -> made
    call Api."owners/get-pet" { params: { owner: "ann lee", name: "a/b", extra: 1 } }
    store response -> owned { key: "x" }
  }
  run Load
}
"""


def test_calls_send_the_documented_methods_paths_and_queries(pets: PetServer, tmp_path: Path) -> None:
    result = run(tmp_path, MISSION, pets.url)
    assert result.code == 0, result.stderr
    assert [(m, p) for m, p, _ in pets.log] == [
        ("GET", "/v2/pets?limit=3&kind=cat&page=1"),
        ("GET", "/v2/pets?limit=3&kind=cat&page=2"),
        ("GET", "/v2/pets?limit=3&kind=cat&page=3"),
        ("GET", "/v2/pets/3"),                            # {petId} from the variable in scope
        ("POST", "/v2/pets"),
        ("GET", "/v2/owners/ann%20lee/pets/a%2Fb?extra=1"),  # placeholders encoded, the rest is query
    ]
    assert {auth for _, _, auth in pets.log} == {"Bearer s3cret-token"}  # the source's auth on every call
    assert pets.created == [{"name": "Rex", "kind": "dog"}]
    assert len(result.stores["pets"]) == 7
    assert result.stores["made"] == [{"id": 101, "name": "Rex", "kind": "dog"}]
    assert result.stores["owned"][0]["name"] == "a/b"


def test_the_base_url_comes_from_the_document_unless_given(pets: PetServer, tmp_path: Path) -> None:
    text = (DOCS / "pets.yaml").read_text().replace("https://pets.example/{version}", pets.url + "/{version}")
    (tmp_path / "pets.yaml").write_text(text)
    result = run(tmp_path, """
mission M {
  source Api from "pets.yaml" { auth: bearer { token: env("PET_TOKEN") } }
  action A { call Api.getPet { params: { petId: 2 } } }
  run A
}""", pets.url)
    assert result.code == 0, result.stderr
    assert [p for _, p, _ in pets.log] == ["/v2/pets/2"]


def test_a_document_fetched_from_a_url(pets: PetServer, tmp_path: Path) -> None:
    result = run(tmp_path, f"""
mission M {{
  source Api from "{pets.url}/docs/pets.yaml" {{ auth: bearer {{ token: env("PET_TOKEN") }}, base: env("DEMO_URL") + "/v2" }}
  store pets: memory("pets")
  action A {{ call Api.getPet {{ params: {{ petId: 5 }} }}
             store response -> pets }}
  run A
}}""", pets.url)
    assert result.code == 0, result.stderr
    assert result.stores["pets"] == [PETS[4]]


def test_an_unknown_operation_of_a_url_document_stops_before_the_first_stage(pets: PetServer, tmp_path: Path) -> None:
    result = run(tmp_path, f"""
mission M {{
  source Api from "{pets.url}/docs/pets.yaml" {{ auth: none, base: env("DEMO_URL") }}
  action A {{ call Api.listPet }}
  run A
}}""", pets.url)
    assert result.code == 3
    assert "unknown operation 'listPet'" in result.stderr and "mission.vague:4:" in result.stderr
    assert pets.log == []


def test_validate_responses_warns_with_json_paths_and_never_fails(pets: PetServer, tmp_path: Path) -> None:
    result = run(tmp_path, """
mission M {
  source Api from "pets.yaml" { auth: bearer { token: env("PET_TOKEN") }, base: env("DEMO_URL") + "/v2",
                                validateResponses: true }
  store pets: memory("pets")
  action A {
    call Api.getPet { params: { petId: 13 } }
    store response -> pets
    call Api.getPet { params: { petId: 2 } }
    store response -> pets
  }
  run A
}""", pets.url)
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "does not match" in line]
    assert len(warnings) == 1, result.stderr  # pet 2 (with a null tag: nullable) matches
    assert "mission.vague:7:" in warnings[0] and "call Api.getPet: response 200" in warnings[0]
    assert "$.id: '13' is not of type 'integer'" in warnings[0]
    assert "$.kind: 'cow' is not one of ['cat', 'dog']" in warnings[0]
    assert len(result.stores["pets"]) == 2


def test_validate_requests_fails_the_step_and_sends_nothing(pets: PetServer, tmp_path: Path) -> None:
    result = run(tmp_path, """
mission M {
  source Api from "pets.yaml" { auth: bearer { token: env("PET_TOKEN") }, base: env("DEMO_URL") + "/v2",
                                validateRequests: true }
  action Good { call Api.listPets { params: { limit: 5 } } }
  action Bad { call Api.createPet { body: { name: "", kind: "cow" } } }
  run Good then Bad
}""", pets.url)
    assert result.code == 1
    assert "validation" in result.stderr
    assert "nothing was sent" in result.stderr
    assert "body $.name: '' should be non-empty" in result.stderr
    assert "body $.kind: 'cow' is not one of ['cat', 'dog']" in result.stderr
    assert [m for m, _, _ in pets.log] == ["GET"]  # Bad sent nothing
    assert pets.created == []


def test_a_missing_path_parameter_fails_the_step(pets: PetServer, tmp_path: Path) -> None:
    result = run(tmp_path, """
mission M {
  source Api from "pets.yaml" { auth: bearer { token: env("PET_TOKEN") }, base: env("DEMO_URL") + "/v2" }
  action A { call Api.getPet { params: { limit: 1 } } }
  run A
}""", pets.url)
    assert result.code == 1
    assert "path parameter {petId} is neither in params nor a variable in scope" in result.stderr
    assert pets.log == []


@pytest.mark.parametrize(("name", "problem"), [
    ("missing.yaml", "cannot read it: No such file or directory"),
    ("broken.yaml", "not valid YAML or JSON"),
    ("not-openapi.yaml", "not an OpenAPI document"),
    ("bad-shape.yaml", "at /paths/~1items/get: \"responses\" is a required property"),
])
def test_an_unusable_document_is_exit_3_for_run_and_exit_1_for_check(name: str, problem: str,
                                                                      tmp_path: Path) -> None:
    for doc in ("broken.yaml", "not-openapi.yaml", "bad-shape.yaml"):
        shutil.copy(DOCS / doc, tmp_path / doc)
    mission = tmp_path / "mission.vague"
    mission.write_text(f'mission M {{\n  source Api from "{name}" {{ auth: none }}\n'
                       '  action A { call Api.listItems }\n  run A\n}\n')
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "PATH": "/usr/bin:/bin"}
    ran = subprocess.run([sys.executable, "-m", "reqon.cli", "run", str(mission), "--data-dir", str(tmp_path / "d")],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert ran.returncode == 3, ran.stderr
    assert f"source Api ({mission}:2:3): OpenAPI document {name}" in ran.stderr
    assert problem in ran.stderr and "Traceback" not in ran.stderr
    checked = subprocess.run([sys.executable, "-m", "reqon.cli", "check", str(mission)],
                             capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert checked.returncode == 1, checked.stderr
    assert "mission.vague:2:10: error[E213]: cannot load the OpenAPI document of source 'Api'" in checked.stderr
    assert problem in checked.stderr and "Traceback" not in checked.stderr


@pytest.mark.parametrize(("where", "problem"), [
    ("{url}/docs/missing.yaml", "cannot fetch the OpenAPI document: GET {url}/docs/missing.yaml: HTTP 404 Not Found"),
    ("http://127.0.0.1:1/openapi.yaml", "cannot fetch the OpenAPI document: GET http://127.0.0.1:1/openapi.yaml: "
                                        "connection refused"),
])
def test_a_url_document_that_cannot_be_fetched_is_exit_3(where: str, problem: str, pets: PetServer,
                                                         tmp_path: Path) -> None:
    result = run(tmp_path, f"""
mission M {{
  source Api from "{where.format(url=pets.url)}" {{ auth: none, base: env("DEMO_URL") }}
  action A {{ call Api.getPet }}
  run A
}}""", pets.url)
    assert result.code == 3
    assert f"source Api ({tmp_path / 'mission.vague'}:3:3): {problem.format(url=pets.url)}" in result.stderr
