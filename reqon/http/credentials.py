"""Where credentials come from (§3.1.1, §8.3): `.env` files, the `--auth` file and
`REQON_<SOURCE>_<FIELD>` variables.

Everything here runs before the first stage, and every problem is a `ConfigError`
(exit 3) that names the file and line, or the source and field — never a value, since
the value may be the secret itself.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reqon.errors import ConfigError
from reqon.values import Value

if TYPE_CHECKING:
    from reqon.http.model import SourceSettings

__all__ = [
    "AUTH_FILE_KEYS",
    "Credentials",
    "ENV_FIELDS",
    "KIND_SETTINGS",
    "env_variable",
    "load_auth_file",
    "load_env_files",
    "parse_env_text",
]

# §3.1.1: the settings each kind reads; every one may come from the --auth file.
KIND_SETTINGS: Mapping[str, tuple[str, ...]] = {
    "none": (),
    "bearer": ("token",),
    "basic": ("username", "password"),
    "api_key": ("key", "header", "query", "prefix"),
    "oauth2": ("accessToken", "refreshToken", "tokenUrl", "clientId", "clientSecret", "scopes"),
}
# The settings that can also come from `REQON_<SOURCE>_<FIELD>`.
ENV_FIELDS: Mapping[str, str] = {
    "token": "TOKEN",
    "username": "USERNAME",
    "password": "PASSWORD",
    "key": "API_KEY",
    "accessToken": "ACCESS_TOKEN",
    "refreshToken": "REFRESH_TOKEN",
    "clientId": "CLIENT_ID",
    "clientSecret": "CLIENT_SECRET",
    "tokenUrl": "TOKEN_URL",
}
_OAUTH2_NEEDS = (
    "oauth2 needs accessToken, or tokenUrl with refreshToken, "
    "or tokenUrl with clientId and clientSecret"
)
_TS_SPELLINGS = {"apiKey": "key", "headerName": "header", "tokenEndpoint": "tokenUrl"}
AUTH_FILE_KEYS = frozenset(
    {"type", *_TS_SPELLINGS, *(k for ks in KIND_SETTINGS.values() for k in ks)}
)


# --- .env files -------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_env_text(text: str, origin: str, environ: Mapping[str, str] | None = None,
                   earlier: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of one `.env` file (§8.3, parsed by python-dotenv); `origin` names it
    in errors.

    What users write works as they expect: `export KEY=…`, `KEY=abc   # comment` (the
    comment is not part of the value), quoted values holding `#`, multi-line double-quoted
    values, and `${VAR}` / `${VAR:-default}` in unquoted and double-quoted values, resolved
    from the real environment first (it wins, §8.3), then from the variables defined before
    (earlier in this file or in an earlier file). Single-quoted values are literal.
    """
    from dotenv.parser import parse_stream
    from dotenv.variables import parse_variables

    environ = os.environ if environ is None else environ
    variables: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            raise ConfigError(f"{origin}:{line}: malformed line in env file (expected NAME=value; "
                              "is a quote left open?)")
        if binding.key is None:
            continue
        if binding.value is None or not _NAME.fullmatch(binding.key):
            raise ConfigError(f"{origin}:{line}: malformed line in env file (expected NAME=value, "
                              "NAME of letters, digits and _, not starting with a digit)")
        value = binding.value
        if not _single_quoted(binding.original.string):
            known = {**(earlier or {}), **variables, **environ}
            value = "".join(atom.resolve(known) for atom in parse_variables(value))
        variables[binding.key] = value
    return variables


def _single_quoted(original: str) -> bool:
    return original.partition("=")[2].lstrip().startswith("'")


def load_env_files(
    paths: Sequence[Path] | None,
    cwd: Path,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment a run uses: the files' variables under the real environment.

    Without `paths` (no `--env`), `.env` then `.env.local` in `cwd` if they exist; with
    `paths`, exactly those files, each of which must exist. Later files override earlier
    ones; a variable set in `environ` (default: the process environment) always wins.
    """
    environ = os.environ if environ is None else environ
    if paths is None:
        files = [p for p in (cwd / ".env", cwd / ".env.local") if p.is_file()]
    else:
        files = [p if p.is_absolute() else cwd / p for p in paths]
    merged: dict[str, str] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read env file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"env file {path} is not UTF-8 text") from None
        merged.update(parse_env_text(text, str(path), environ, merged))
    merged.update(environ)
    return merged


# --- the --auth file --------------------------------------------------------------------

_REFERENCE = re.compile(
    r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*)|(\{))"
)


def _substitute(text: str, env: Mapping[str, str], source: str, key: str) -> str:
    """`$NAME`, `${NAME}`, `${NAME:-default}` (default also when empty) and `$$`."""

    def replace(match: re.Match[str]) -> str:
        dollar, braced, default, bare, broken = match.groups()
        if dollar:
            return "$"
        if broken:
            raise ConfigError(f"credentials for source {source}: malformed ${{...}} in {key}")
        name = braced or bare
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is not None:
                return default
            raise ConfigError(
                f"credentials for source {source}: variable {name} (used by {key}) is not set"
            )
        return value

    return _REFERENCE.sub(replace, text)


def _entry(raw: object, source: str, env: Mapping[str, str]) -> dict[str, Value]:
    if not isinstance(raw, dict):
        raise ConfigError(f"credentials for source {source} must be an object")
    entry: dict[str, Value] = {}
    for written, value in raw.items():
        key = str(_TS_SPELLINGS.get(written, written))
        if written not in AUTH_FILE_KEYS:
            raise ConfigError(f"credentials for source {source}: unknown key {written}")
        if key in entry:
            raise ConfigError(f"credentials for source {source}: {key} is given twice")
        if key == "scopes":
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise ConfigError(
                    f"credentials for source {source}: scopes must be a list of strings"
                )
            entry[key] = [_substitute(s, env, source, key) for s in value]
        elif isinstance(value, str):
            entry[key] = _substitute(value, env, source, written)
        else:
            raise ConfigError(f"credentials for source {source}: {written} must be a string")
    return entry


def load_auth_file(
    path: Path,
    env: Mapping[str, str],
    sources: Collection[str] | None = None,
) -> dict[str, dict[str, Value]]:
    """The `--auth` file (§8.3): source name → settings, variables substituted and TS
    spellings normalised (`apiKey` → `key`, ...). With `sources`, entries for other
    sources are dropped unchecked, so one file can serve many missions."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"credentials file {path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"credentials file {path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(f"credentials file {path} must hold a JSON object of sources")
    return {
        name: _entry(raw, name, env)
        for name, raw in document.items()
        if sources is None or name in sources
    }


# --- resolution -------------------------------------------------------------------------


def env_variable(source: str, setting: str) -> str | None:
    """`REQON_<SOURCE>_<FIELD>` for a setting, or None if it has no variable."""
    field = ENV_FIELDS.get(setting)
    return None if field is None else f"REQON_{source.upper()}_{field}"


def _provided(value: Value) -> bool:
    """Null (an unset `env()`) and the empty string provide nothing: the next place is
    asked, and a required setting stays missing."""
    return value is not None and value != ""


class Credentials:
    """Resolves each auth setting of a source by the precedence of §3.1.1: the
    mission's settings object, then the `--auth` file entry, then the environment."""

    def __init__(
        self,
        auth_file: Mapping[str, Mapping[str, Value]] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._file = auth_file or {}
        self._env = os.environ if env is None else env

    def settings(self, source: SourceSettings) -> dict[str, Value]:
        """The resolved settings of `source`'s auth kind; raises `ConfigError` when the
        `--auth` entry names another `type`."""
        entry = self._file.get(source.name, {})
        declared = entry.get("type")
        if declared is not None and declared != source.auth_kind:
            raise ConfigError(
                f"credentials for source {source.name}: type {declared} does not match "
                f"the mission's auth kind {source.auth_kind}"
            )
        resolved: dict[str, Value] = {}
        for name in KIND_SETTINGS.get(source.auth_kind, ()):
            value = self._lookup(source, entry, name)
            if value is not None:
                resolved[name] = value
        return resolved

    def _lookup(self, source: SourceSettings, entry: Mapping[str, Value], name: str) -> Value:
        for value in (source.auth_settings.get(name), entry.get(name)):
            if _provided(value):
                return value
        variable = env_variable(source.name, name)
        value = None if variable is None else self._env.get(variable)
        return value if _provided(value) else None

    def required_missing(self, source: SourceSettings) -> list[str]:
        """The required settings (§3.1.1) that no place provides, by setting name.

        For oauth2 these are the settings of the grant closest to complete (an access
        token alone when nothing at all is given)."""
        have = self.settings(source)
        kind = source.auth_kind
        if kind == "bearer":
            return [] if "token" in have else ["token"]
        if kind == "basic":
            return [f for f in ("username", "password") if f not in have]
        if kind == "api_key":
            return [] if "key" in have else ["key"]
        if kind == "oauth2":
            return _oauth2_missing(have)
        return []

    def missing_message(self, source: SourceSettings) -> str | None:
        """The configuration error for a source with missing credentials, or None."""
        missing = self.required_missing(source)
        if not missing:
            return None
        where = [f"{name} (variable {env_variable(source.name, name)})" for name in missing]
        message = (
            f"source {source.name} (auth {source.auth_kind}) is missing the credential "
            f"{', '.join(where)}; give it in the mission, in the --auth file or in the "
            f"environment"
        )
        if source.auth_kind == "oauth2":
            message += f" ({_OAUTH2_NEEDS})"
        return message


def _oauth2_missing(have: Mapping[str, Value]) -> list[str]:
    if "accessToken" in have:
        return []
    if not any(f in have for f in ("tokenUrl", "refreshToken", "clientId", "clientSecret")):
        return ["accessToken"]
    grants = (("tokenUrl", "refreshToken"), ("tokenUrl", "clientId", "clientSecret"))
    return min(([f for f in grant if f not in have] for grant in grants), key=len)
