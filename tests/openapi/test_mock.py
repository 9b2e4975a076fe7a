"""`reqon mock` as a real process: it answers every operation from the document, checks
requests (400 with the reason), is deterministic by seed, and a mission runs against it."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_mission_path
from tests.openapi.mock_process import ROOT, reqon_mock

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"


# The mock is on 127.0.0.1: never through a proxy of the environment (urllib's global opener
# keeps whatever proxies the environment had when some earlier test first used it).
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                     method="POST" if data is not None else "GET")
    try:
        with DIRECT.open(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def test_answers_examples_generated_data_and_400_with_the_reason() -> None:
    with reqon_mock(ROOT / "examples" / "openapi" / "bookstore.yaml", "--seed", "7") as mock:
        status, price = get(f"{mock.url}/prices/9780000000001")
        assert (status, price) == (200, {"isbn": "9780000000001", "amount": 12.5, "currency": "EUR"})  # the example
        status, page = get(f"{mock.url}/books?page=1&per_page=10")
        assert status == 200 and set(page) == {"items", "page", "total"}
        assert page["items"] and all(re.fullmatch("[0-9]{13}", book["isbn"]) for book in page["items"])  # pattern
        status, again = get(f"{mock.url}/books?page=1&per_page=10")
        assert again == page  # same seed, same request: same data
        status, wrong = get(f"{mock.url}/books?per_page=500")
        assert status == 400
        assert wrong["problems"] == ["query parameter 'per_page': 500 is greater than the maximum of 100"]
        status, wrong = get(f"{mock.url}/books/12")
        assert status == 400 and "does not match '^[0-9]{13}$'" in wrong["problems"][0]
        status, echoed = get(f"{mock.url}/echo", {"a": 1})
        assert status == 200 and isinstance(echoed, dict)
        log = mock.log()
    assert [line.split()[1:3] for line in log] == [
        ["/prices/9780000000001", "200"], ["/books?page=1&per_page=10", "200"], ["/books?page=1&per_page=10", "200"],
        ["/books?per_page=500", "400"], ["/books/12", "400"], ["/echo", "200"]]


def test_another_seed_other_data() -> None:
    answers = []
    for seed in ("1", "2"):
        with reqon_mock(DOCS / "pets.yaml", "--seed", seed) as mock:
            answers.append(get(f"{mock.url}/pets/4")[1])
            assert mock.url.endswith("/v2")  # served under the document's base path
    assert answers[0] != answers[1]


def test_a_mission_runs_against_the_mock(tmp_path: Path) -> None:
    shutil.copy(DOCS / "pets.yaml", tmp_path / "pets.yaml")
    mission = tmp_path / "mission.vague"
    mission.write_text("""
mission Pets {
  source Api from "pets.yaml" { auth: bearer { token: "t" }, base: env("DEMO_URL"), validateResponses: true }
  store pets: memory("pets")
  store made: memory("made")
  action Load {
    call Api.listPets { params: { limit: 10, kind: "cat" }, paginate: page(page, 10) }
    store response -> pets
    for pet in pets { call Api.getPet { params: { petId: pet.id } } }
    call Api.createPet { body: { name: "Rex", kind: "dog" } }
    store response -> made
    call Api."owners/get-pet" { params: { owner: "ann", name: "rex" } }
  }
  run Load
}""")
    with reqon_mock(DOCS / "pets.yaml") as mock:
        result = run_mission_path(mission, tmp_path, url=mock.url)
        log = mock.log()
    assert result.code == 0, result.stderr
    assert "does not match" not in result.stderr  # generated data fit their own schema
    pets = result.stores["pets"]
    assert 1 <= len(pets) <= 2
    assert [line.split()[0:2] for line in log] == [
        ["GET", "/v2/pets?limit=10&kind=cat&page=1"],
        *[["GET", f"/v2/pets/{pet['id']}"] for pet in pets],
        ["POST", "/v2/pets"],
        ["GET", "/v2/owners/ann/pets/rex"]]
    assert all(line.split()[2] in ("200", "201") for line in log)


def test_an_unusable_document_or_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "reqon.cli", "mock", str(DOCS / "bad-shape.yaml")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 3
    assert "at /paths/~1items/get: \"responses\" is a required property" in done.stderr
    assert "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "reqon.cli", "mock", str(tmp_path / "nope.yaml")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "no such file" in done.stderr
    with reqon_mock(DOCS / "pets.yaml") as mock:
        port = mock.url.split(":")[2].split("/")[0]
        done = subprocess.run([sys.executable, "-m", "reqon.cli", "mock", str(DOCS / "pets.yaml"), "--port", port],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 3 and f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_the_call_mission_of_the_engine_tests_runs_against_the_mock(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/engine/test_call.py's mission, unchanged, against `reqon mock` of the same document."""
    from tests.engine.test_call import MISSION
    shutil.copy(DOCS / "pets.yaml", tmp_path / "pets.yaml")
    (tmp_path / "mission.vague").write_text(MISSION)
    monkeypatch.setenv("PET_TOKEN", "mock-token")
    with reqon_mock(DOCS / "pets.yaml") as mock:
        result = run_mission_path(tmp_path / "mission.vague", tmp_path, url=mock.url.removesuffix("/v2"))
        log = mock.log()
    assert result.code == 0, result.stderr
    lines = [line.split() for line in log]
    assert lines[0][:3] == ["GET", "/v2/pets?limit=3&kind=cat&page=1", "200"]
    assert ["POST", "/v2/pets", "201", "createPet"] in lines
    assert lines[-1] == ["GET", "/v2/owners/ann%20lee/pets/a%2Fb?extra=1", "200", "owners/get-pet"]
    assert result.stores["made"] and result.stores["made"][0]["kind"] in ("cat", "dog")


@pytest.mark.parametrize(("document", "steps", "expected"), [
    ("swagger2.yaml", 'call Api.getPet { params: { petId: 7 } }\n    call Api.createPet { body: { id: 1, name: "x" } }',
     [["GET", "/base/pets/7", "200", "getPet"], ["POST", "/base/pets", "200", "createPet"]]),
    ("pets31.json", "call Api.getPet { params: { petId: 7 } }", [["GET", "/api/pets/7", "200", "getPet"]]),
    ("split/main.yaml", 'call Api.getTree { params: { treeId: "oak" } }', [["GET", "/trees/oak", "200", "getTree"]]),
])
def test_swagger_20_openapi_31_json_and_a_split_document_run_against_the_mock(
        document: str, steps: str, expected: list[list[str]], tmp_path: Path) -> None:
    mission = tmp_path / "mission.vague"
    mission.write_text(f"""
mission M {{
  source Api from "{DOCS / document}" {{ auth: none, base: env("DEMO_URL"),
                                         validateResponses: true, validateRequests: true }}
  store out: memory("out")
  action A {{
    {steps}
    store response -> out {{ key: "last" }}
  }}
  run A
}}""")
    with reqon_mock(DOCS / document, "--seed", "3") as mock:
        result = run_mission_path(mission, tmp_path, url=mock.url)
        log = mock.log()
    assert result.code == 0, result.stderr
    assert "does not match" not in result.stderr
    assert [line.split() for line in log] == expected
    assert isinstance(result.stores["out"][0], dict) and result.stores["out"][0]
