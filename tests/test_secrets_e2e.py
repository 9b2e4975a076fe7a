"""Issue 5, end to end: credentials of every kind never leak into any output or stored file.

The mission authenticates against the hostile server with a bearer token (from the
environment), basic auth (from an `--auth` file with `${VAR}`), an API key sent as a
query parameter and an OAuth2 client-credentials grant; one branch fails on purpose so
that an error message with the request URL is printed. Then every byte the run wrote —
stdout, stderr (plain, `--verbose` and `--json-log`), `--output`, the data directory —
is searched for each secret.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_mission_text

BEARER = "bearer-s3cret-4242"
PASSWORD = "basic-pa55word-77"
API_KEY = "api-k3y-zzz-999"
CLIENT_SECRET = "cl1ent-s3cret"  # what the hostile server's token endpoint accepts

MISSION = """
mission Secretive {
  source Bearer { auth: bearer, base: "{url}" }
  source Basic { auth: basic, base: "{url}" }
  source Keyed { auth: api_key { key: env("TEST_API_KEY"), query: "apikey" }, base: "{url}" }
  source OAuth {
    auth: oauth2 { tokenUrl: "{url}/oauth/token", clientId: "client-7", clientSecret: env("TEST_CLIENT_SECRET") },
    base: "{url}"
  }

  store seen: file("seen")
  store table: sql("seen_table")

  action ViaBearer {
    get "/protected" { source: Bearer }
    store { via: "bearer", ok: response.ok } -> seen { key: "bearer" }
  }
  action ViaBasic {
    get "/echo" { source: Basic }
    store { via: "basic", method: response.method } -> table { key: "basic" }
  }
  action ViaKey {
    get "/echo" { source: Keyed }
    store { via: "key", pairs: length(response.pairs) } -> seen { key: "key" }
  }
  action ViaOAuth {
    get "/oauth/data" { source: OAuth }
    store { via: "oauth", data: response.data } -> table { key: "oauth" }
  }
  action FailingWithKey {
    get "/respond" { source: Keyed, params: { status: 500 }, retry: { maxAttempts: 1 } }
  }

  run [ViaBearer, ViaBasic, ViaKey, ViaOAuth] then [FailingWithKey] { mode: "best-effort" }
}
"""


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQON_BEARER_TOKEN", BEARER)
    monkeypatch.setenv("BASIC_PASSWORD", PASSWORD)
    monkeypatch.setenv("TEST_API_KEY", API_KEY)
    monkeypatch.setenv("TEST_CLIENT_SECRET", CLIENT_SECRET)


def _everything_written(result: Any, tmp_path: Path) -> str:
    files = [p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*")
             if p.is_file() and p.name != "mission.vague" and p.suffix != ".json" or p.name == "output.json"]
    data = [p.read_bytes().decode("utf-8", "replace") for p in result.data_dir.rglob("*") if p.is_file()]
    return "\n".join([result.stdout, result.stderr, *files, *data])


@pytest.mark.parametrize("flags", [["--verbose"], ["--json-log"], []], ids=["verbose", "json-log", "plain"])
def test_no_secret_in_any_output_or_stored_file(hostile: Any, tmp_path: Path, secret_env: None,
                                                flags: list[str]) -> None:
    hostile.state.expected = {"Authorization": f"Bearer {BEARER}"}
    auth_file = tmp_path / "creds.json"
    auth_file.write_text(json.dumps({"Basic": {"username": "reader", "password": "${BASIC_PASSWORD}"}}))
    text = MISSION.replace("{url}", hostile.url)
    result = run_mission_text(text, tmp_path, "--auth", str(auth_file), *flags)

    assert result.code == 0, result.stderr
    assert {r["via"] for r in result.stores["seen"] + result.stores["table"]} == {"bearer", "basic", "key", "oauth"}
    seen = {s.path: s for s in hostile.state.seen}
    assert seen["/protected"].headers["Authorization"] == f"Bearer {BEARER}"  # the credentials were really sent
    assert f"apikey={API_KEY}" in seen["/respond"].query
    issued = [f"access-{n:04d}" for n in range(1, hostile.state.tokens_issued + 1)]
    assert issued, "the OAuth2 grant ran"

    written = _everything_written(result, tmp_path)
    for secret in [BEARER, PASSWORD, API_KEY, CLIENT_SECRET, *issued]:
        assert secret not in written, f"{secret!r} leaked"
    if "--json-log" not in flags:
        assert "apikey=***" in result.stderr  # the failing request is named, with its key masked
    if flags == ["--verbose"]:
        assert "GET " in result.stderr and "/protected" in result.stderr


def test_missing_credential_is_a_configuration_error_naming_the_field(hostile: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQON_BEARER_TOKEN", raising=False)
    text = ('mission M {\n  source Api { auth: bearer, base: "' + hostile.url + '" }\n'
            '  action A { get "/protected" }\n  run A\n}\n')
    result = run_mission_text(text, tmp_path)
    assert result.code == 3
    assert "REQON_API_TOKEN" in result.stderr and "token" in result.stderr
    assert hostile.state.seen == []  # stopped before the first stage
