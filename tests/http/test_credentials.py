"""Credentials (§3.1.1, §8.3): `.env` files, the `--auth` file and the environment."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reqon.http.credentials import (
    Credentials,
    env_variable,
    load_auth_file,
    load_env_files,
    parse_env_text,
)
from reqon.errors import ConfigError
from reqon.http.client import HttpRuntime, SourceSettings

# --- .env files -------------------------------------------------------------------------


def test_env_file_syntax() -> None:
    text = "\n".join([
        "# a comment",
        "",
        "PLAIN=  spaced value  ",
        "export EXPORTED=yes",
        "SINGLE='lit $HOME \\n'",
        'DOUBLE="a\\nb\\tc \\"q\\" \\\\ \\x"',
        "EQUALS=a=b=c",
        "EMPTY=",
        'QUOTED_COMMENT="v" # trailing comment',
        "  INDENTED = 1",
    ])  # fmt: skip
    assert parse_env_text(text, ".env") == {
        "PLAIN": "spaced value",
        "EXPORTED": "yes",
        "SINGLE": "lit $HOME \\n",
        "DOUBLE": 'a\nb\tc "q" \\ \\x',
        "EQUALS": "a=b=c",
        "EMPTY": "",
        "QUOTED_COMMENT": "v",
        "INDENTED": "1",
    }


@pytest.mark.parametrize(
    "line",
    ["s3cr3t words", "1NAME=s3cr3t", "NAME='s3cr3t", 'NAME="s3cr3t', "NAME='s3cr3t' b", "=s3cr3t"],
)
def test_malformed_lines_name_file_and_line_but_not_the_value(line: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_env_text(f"OK=1\n{line}\n", "/app/.env")
    message = str(caught.value)
    assert message.startswith("/app/.env:2: malformed line in env file (")
    assert "s3cr3t" not in message


def test_default_files_and_the_real_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=env\nB=env\nC=env\n")
    (tmp_path / ".env.local").write_text("B=local\nC=local\n")
    merged = load_env_files(None, tmp_path, environ={"C": "process", "D": "process"})
    assert {k: merged[k] for k in "ABCD"} == {"A": "env", "B": "local", "C": "process",
                                              "D": "process"}  # fmt: skip


def test_explicit_env_files_in_order(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("IGNORED=1\n")
    (tmp_path / "one.env").write_text("X=one\nY=one\n")
    (tmp_path / "two.env").write_text("Y=two\n")
    merged = load_env_files([Path("one.env"), tmp_path / "two.env"], tmp_path, environ={})
    assert merged == {"X": "one", "Y": "two"}


def test_a_missing_explicit_env_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_env_files([Path("nope.env")], tmp_path, environ={})
    assert "nope.env" in str(caught.value)


# --- the --auth file --------------------------------------------------------------------


def write_json(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auth.json"
    path.write_text(text)
    return path


def test_variables_are_substituted(tmp_path: Path) -> None:
    path = write_json(tmp_path, """{
      "Pricing": {"token": "${PRICING_TOKEN}"},
      "Buoys": {"type": "basic", "username": "buoy-reader", "password": "$BUOY_PASSWORD!"},
      "Sat": {"clientId": "${ID:-sat-7}", "clientSecret": "x$$y${EMPTY:-fallback}",
              "scopes": ["imagery.read", "$SCOPE"], "tokenEndpoint": "https://id/t"},
      "Keys": {"apiKey": "k", "headerName": "X-K"}
    }""")  # fmt: skip
    env = {"PRICING_TOKEN": "p-tok", "BUOY_PASSWORD": "pw", "EMPTY": "", "SCOPE": "extra"}
    assert load_auth_file(path, env) == {
        "Pricing": {"token": "p-tok"},
        "Buoys": {"type": "basic", "username": "buoy-reader", "password": "pw!"},
        "Sat": {"clientId": "sat-7", "clientSecret": "x$yfallback",
                "scopes": ["imagery.read", "extra"], "tokenUrl": "https://id/t"},
        "Keys": {"key": "k", "header": "X-K"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"A": {"token": "${MISSING}"}}', "variable MISSING (used by token) is not set"),
        ('{"A": {"tokken": "x"}}', "source A: unknown key tokken"),
        ('{"A": {"token": 5}}', "source A: token must be a string"),
        ('{"A": {"scopes": "read"}}', "scopes must be a list of strings"),
        ('{"A": {"key": "x", "apiKey": "y"}}', "key is given twice"),
        ('{"A": "token"}', "credentials for source A must be an object"),
        ('{"A": {"token": "${BROKEN"}}', "malformed ${...} in token"),
        ('["A"]', "must hold a JSON object"),
        ('{"A": {"token": }', "auth.json:1:"),
    ],
)
def test_auth_file_errors(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_auth_file(write_json(tmp_path, text), {})
    assert fragment in str(caught.value)


def test_entries_for_other_sources_are_ignored(tmp_path: Path) -> None:
    path = write_json(tmp_path, '{"A": {"token": "a"}, "Other": {"bogus": "${UNSET}"}}')
    assert load_auth_file(path, {}, sources={"A"}) == {"A": {"token": "a"}}


# --- resolution -------------------------------------------------------------------------


def source(kind: str, name: str = "Pricing", **settings: Any) -> SourceSettings:
    return SourceSettings(name=name, base_url="http://h", auth_kind=kind, auth_settings=settings)


def test_variable_names() -> None:
    assert env_variable("MirrorNorth", "token") == "REQON_MIRRORNORTH_TOKEN"
    assert env_variable("Pricing", "key") == "REQON_PRICING_API_KEY"
    assert env_variable("Pricing", "clientSecret") == "REQON_PRICING_CLIENT_SECRET"
    assert env_variable("Pricing", "header") is None


def test_precedence_mission_then_file_then_environment() -> None:
    env = {"REQON_PRICING_USERNAME": "env-user", "REQON_PRICING_PASSWORD": "env-pw"}
    creds = Credentials({"Pricing": {"password": "file-pw"}}, env)
    assert creds.settings(source("basic")) == {"username": "env-user", "password": "file-pw"}
    assert creds.settings(source("basic", password="mission-pw"))["password"] == "mission-pw"


def test_null_and_empty_values_fall_through() -> None:
    creds = Credentials({"Pricing": {"token": ""}}, {"REQON_PRICING_TOKEN": "env-token"})
    assert creds.settings(source("bearer", token=None)) == {"token": "env-token"}


def test_settings_of_other_kinds_are_not_resolved() -> None:
    creds = Credentials({"Pricing": {"token": "t", "username": "u"}}, {})
    assert creds.settings(source("bearer")) == {"token": "t"}


def test_type_must_match_the_missions_auth_kind() -> None:
    creds = Credentials({"Pricing": {"type": "basic", "token": "t"}}, {})
    with pytest.raises(ConfigError) as caught:
        creds.settings(source("bearer"))
    assert "type basic does not match the mission's auth kind bearer" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "given", "missing"),
    [
        ("none", {}, []),
        ("bearer", {}, ["token"]),
        ("basic", {"username": "u"}, ["password"]),
        ("api_key", {"query": "k"}, ["key"]),
        ("oauth2", {}, ["accessToken"]),
        ("oauth2", {"accessToken": "a"}, []),
        ("oauth2", {"tokenUrl": "http://id", "refreshToken": "r"}, []),
        ("oauth2", {"clientId": "c", "clientSecret": "s"}, ["tokenUrl"]),
        ("oauth2", {"tokenUrl": "http://id", "clientId": "c"}, ["refreshToken"]),
        ("oauth2", {"tokenUrl": "http://id", "clientId": "c", "clientSecret": "s"}, []),
    ],
)
def test_required_settings(kind: str, given: dict[str, Any], missing: list[str]) -> None:
    assert Credentials({}, {}).required_missing(source(kind, **given)) == missing


def test_missing_credentials_stop_the_run_naming_source_and_field() -> None:
    creds = Credentials({}, {"REQON_PRICING_USERNAME": "user-r3ader"})
    with pytest.raises(ConfigError) as caught:
        asyncio.run(HttpRuntime.open([source("basic")], creds))
    message = str(caught.value)
    assert "source Pricing" in message
    assert "password (variable REQON_PRICING_PASSWORD)" in message
    assert "user-r3ader" not in message


def test_what_users_write_in_env_files() -> None:
    """Issue 12: comments after values, `#` inside quotes, `export`, multi-line quoted
    values and `${VAR}` expansion (the real environment first, then earlier variables)."""
    text = "\n".join([
        "TOKEN=abc   # production token",
        'HASHED="pa#ss"  # the # inside quotes is kept',
        "LITERAL='x#y ${HOME}'",
        "export EXPORTED=yes",
        'CERT="-----BEGIN-----',
        "line two",
        '-----END-----"',
        "BASE=https://api.example",
        "URL=${BASE}/v1",
        'QUOTED_URL="${BASE}/v2"',
        "FROM_ENV=${REAL}",
        "DEFAULTED=${MISSING:-fallback}",
        "AFTER=ok",
    ])  # fmt: skip
    assert parse_env_text(text, ".env", {"REAL": "process", "BASE": "ignored-by-nothing"} | {}) == {
        "TOKEN": "abc",
        "HASHED": "pa#ss",
        "LITERAL": "x#y ${HOME}",
        "EXPORTED": "yes",
        "CERT": "-----BEGIN-----\nline two\n-----END-----",
        "BASE": "https://api.example",
        "URL": "ignored-by-nothing/v1",  # the real environment wins, in expansions too (§8.3)
        "QUOTED_URL": "ignored-by-nothing/v2",
        "FROM_ENV": "process",
        "DEFAULTED": "fallback",
        "AFTER": "ok",
    }


def test_expansion_sees_earlier_files(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HOST=db.local\n")
    (tmp_path / ".env.local").write_text("DSN=postgres://${HOST}/x\n")
    assert load_env_files(None, tmp_path, environ={})["DSN"] == "postgres://db.local/x"


def test_an_unreadable_env_file_is_a_configuration_error(tmp_path: Path) -> None:
    import os
    if os.geteuid() == 0:
        directory = tmp_path / "dir.env"  # root reads any file; a directory cannot be read as one
        directory.mkdir()
        path = directory
    else:
        path = tmp_path / "locked.env"
        path.write_text("A=1\n")
        path.chmod(0)
    with pytest.raises(ConfigError) as caught:
        load_env_files([path], tmp_path, environ={})
    assert str(caught.value).startswith(f"cannot read env file {path}: ")
