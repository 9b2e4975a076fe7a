"""Validating values against a document's schemas: responses (`validateResponses`, §3.1.6)
and requests (`validateRequests`, docs/openapi.md).

Two libraries, one verdict. jsonschema-rs answers "valid?" in microseconds; only when it
says no does openapi-schema-validator (OpenAPI's own dialect of JSON Schema: `nullable`,
3.0's boolean exclusive bounds, 3.1's 2020-12) decide and name the errors. A value the fast
path rejects only because of a dialect difference (a `null` where 3.0 says `nullable`) is
therefore accepted, at the slower path's price. To keep that price rare, the fast path
reads a 3.0 document with `nullable: true` written the JSON Schema way (`null` added to
`type`, as OpenAPI 3.1 writes it); the translation only ever widens what the fast path
accepts to exactly what 3.0 accepts, and the slow path stays the judge. Every `$ref` resolves through one
`referencing` registry holding every file of the document; nothing is expanded.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

from urllib.parse import unquote, urljoin

from reqon.openapi.document import Document, Operation, fragment

MAX_ERRORS = 3


@dataclass(frozen=True)
class Problem:
    path: str  # JSON path of the value, `$` for the whole
    message: str


class SchemaCheck:
    """One schema (found at `resolved`, a `referencing` Resolved) ready to validate values."""

    def __init__(self, schemas: DocumentSchemas, contents: Any, base_uri: str) -> None:
        self._schemas = schemas
        self._contents = _absolute_refs(contents, base_uri)  # it no longer sits in its file
        self._fast = schemas.fast_validator(self._contents)
        self._slow: Any = None

    def problems(self, value: Any) -> list[Problem]:
        if self._fast is not None and self._fast.is_valid(value):
            return []
        if self._slow is None:
            self._slow = self._schemas.slow_validator(self._contents)
        return [Problem(error.json_path, _short(error.message)) for error in islice(self._slow.iter_errors(value),
                                                                                      MAX_ERRORS)]


class DocumentSchemas:
    """The validators of one document, built on first use per operation and kept."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self._registry: Any = None
        self._rs_registry: Any = None
        self._spec: Any = None
        self._responses: dict[tuple[str, str], SchemaCheck | None] = {}
        self._requests: dict[str, RequestChecks] = {}

    # -- libraries --------------------------------------------------------------------
    def _path_spec(self) -> Any:
        if self._spec is None:
            from jsonschema_path import SchemaPath
            contents = self.document.contents
            self._spec = SchemaPath.from_dict(self.document.root, base_uri=self.document.uri,
                                              handlers={s: _lookup_in(contents) for s in ("file", "http", "https")})
        return self._spec

    def _python_registry(self) -> Any:
        if self._registry is None:
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT4, DRAFT202012
            draft = DRAFT202012 if self.document.version == "3.1" else DRAFT4
            self._registry = Registry().with_resources(
                (uri, Resource.from_contents(value, default_specification=draft))
                for uri, value in self.document.contents.items())
        return self._registry

    def fast_validator(self, contents: Any) -> Any:
        import jsonschema_rs
        try:
            if self._rs_registry is None:
                files = self.document.contents
                if self.document.version != "3.1":
                    files = {uri: _nullable_as_type(value) for uri, value in files.items()}
                self._rs_registry = jsonschema_rs.Registry(list(files.items()))
            cls = jsonschema_rs.Draft202012Validator if self.document.version == "3.1" else jsonschema_rs.Draft4Validator
            if self.document.version != "3.1":
                contents = _nullable_as_type(contents)
            return cls(contents, registry=self._rs_registry)
        except Exception:  # a schema the fast library cannot compile: the slow path decides alone
            return None

    def slow_validator(self, contents: Any) -> Any:
        from openapi_schema_validator import OAS30Validator, OAS31Validator
        cls = OAS31Validator if self.document.version == "3.1" else OAS30Validator
        return cls(contents, registry=self._python_registry())

    def _check_at(self, node: Any) -> SchemaCheck:
        with node.resolve() as resolved:
            return SchemaCheck(self, resolved.contents, resolved.resolver._base_uri)

    # -- responses --------------------------------------------------------------------
    def response(self, operation: Operation, status: int, content_type: str | None) -> SchemaCheck | None:
        """The schema of `status` (else `default`) for the media type answered; None if undocumented."""
        key = (operation.operation_id, f"{status}\0{content_type or ''}")
        if key not in self._responses:
            self._responses[key] = self._response(operation, status, content_type)
        return self._responses[key]

    def _response(self, operation: Operation, status: int, content_type: str | None) -> SchemaCheck | None:
        responses = self._path_spec() / "paths" / operation.path / operation.method.lower() / "responses"
        keys = set(responses.keys())
        code = next((k for k in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default") if k in keys), None)
        if code is None:
            return None
        response = responses / code
        if self.document.version == "2.0":
            return self._check_at(response / "schema") if "schema" in set(response.keys()) else None
        if "content" not in set(response.keys()):
            return None
        media = _media_type(set((response / "content").keys()), content_type)
        if media is None:
            return None
        node = response / "content" / media
        return self._check_at(node / "schema") if "schema" in set(node.keys()) else None

    # -- requests ---------------------------------------------------------------------
    def request(self, operation: Operation) -> RequestChecks:
        checks = self._requests.get(operation.operation_id)
        if checks is None:
            checks = self._requests[operation.operation_id] = self._request(operation)
        return checks

    def _request(self, operation: Operation) -> RequestChecks:
        item = self._path_spec() / "paths" / operation.path
        op = item / operation.method.lower()
        params: dict[tuple[str, str], tuple[bool, SchemaCheck | None]] = {}
        body: SchemaCheck | None = None
        body_required = False
        for owner in (item, op):
            if "parameters" not in set(owner.keys()):
                continue
            for param in owner / "parameters":
                keys = set(param.keys())
                name, where = (param / "name").read_value(), (param / "in").read_value()
                required = where == "path" or ("required" in keys and (param / "required").read_value() is True)
                if where == "body":
                    body, body_required = (self._check_at(param / "schema") if "schema" in keys else None), required
                    continue
                schema = self._check_at(param / "schema") if "schema" in keys else None
                if schema is None and self.document.version == "2.0" and "type" in keys:
                    schema = self._check_at(param)  # 2.0: the parameter object is its own schema
                params[(name, where)] = (required, schema)
        if "requestBody" in set(op.keys()):
            request_body = op / "requestBody"
            keys = set(request_body.keys())
            body_required = "required" in keys and (request_body / "required").read_value() is True
            if "content" in keys:
                media = _media_type(set((request_body / "content").keys()), "application/json")
                node = request_body / "content" / media if media is not None else None
                if node is not None and "schema" in set(node.keys()):
                    body = self._check_at(node / "schema")
        return RequestChecks(params, body, body_required)


@dataclass(frozen=True)
class RequestChecks:
    params: dict[tuple[str, str], tuple[bool, SchemaCheck | None]]  # (name, in) -> (required, schema)
    body: SchemaCheck | None
    body_required: bool

    def problems(self, query: dict[str, Any], path: dict[str, Any], headers: dict[str, Any],
                 body: Any, *, from_text: bool = False) -> list[str]:
        """Reasons the request does not match; empty if it does. `from_text`: the parameters
        are the strings of a URL (the mock server's side), so "5" also counts as 5."""
        given = {"query": query, "path": path, "header": {k.lower(): v for k, v in headers.items()}}
        found: list[str] = []
        for (name, where), (required, schema) in self.params.items():
            values = given.get(where)
            if values is None:
                continue
            key = name.lower() if where == "header" else name
            if key not in values:
                if required:
                    found.append(f"required {where} parameter '{name}' is missing")
                continue
            if schema is not None:
                wrong = schema.problems(values[key])
                if wrong and from_text:
                    wrong = _from_text_problems(schema, values[key], wrong)
                found.extend(f"{where} parameter '{name}': {p.message}" for p in wrong)
        if body is None:
            if self.body_required:
                found.append("the request body is required")
        elif self.body is not None:
            found.extend(f"body {p.path}: {p.message}" for p in self.body.problems(body))
        return found


def _from_text_problems(schema: SchemaCheck, text: Any, as_text: list[Problem]) -> list[Problem]:
    """A URL parameter that fails as a string is judged as the JSON it spells (`5`, `true`)
    when the string failed on its type, so `?per_page=500` reads "greater than the maximum"."""
    value = _from_text(text)
    if value is text or isinstance(value, str) or not all("is not of type" in p.message for p in as_text):
        return as_text
    return schema.problems(value)


def _from_text(value: Any) -> Any:
    """A URL parameter read as JSON where it parses (`5`, `true`, `1.5`), else as is."""
    if isinstance(value, list):
        return [_from_text(v) for v in value]
    if not isinstance(value, str):
        return value
    try:
        import json
        return json.loads(value)
    except ValueError:
        return value


def _media_type(available: set[str], wanted: str | None) -> str | None:
    """The media type whose schema applies: the one answered, else JSON, else the only one."""
    if not available:
        return None
    if wanted:
        base = wanted.split(";", 1)[0].strip().lower()
        for media in available:
            if media.lower() == base:
                return media
    for media in sorted(available):
        if media.lower() in ("application/json", "*/*") or media.lower().endswith("+json"):
            return media
    return sorted(available)[0] if len(available) == 1 else None


def _absolute_refs(value: Any, base_uri: str) -> Any:
    """A copy of a schema taken out of its file, whose `$ref`s name that file explicitly."""
    if isinstance(value, list):
        return [_absolute_refs(v, base_uri) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _absolute_refs(v, base_uri) for k, v in value.items() if k != "$ref"}
    ref = value.get("$ref")
    if isinstance(ref, str):
        target, _, pointer = urljoin(base_uri, ref).partition("#")
        out["$ref"] = f"{target}#{fragment(unquote(pointer))}"
    return out


def _nullable_as_type(value: Any) -> Any:
    """A copy in which a 3.0 schema `{type: T, nullable: true}` reads `{type: [T, "null"]}`
    (and a nullable `enum` admits null), as OpenAPI 3.1 and Draft 4 write it."""
    if isinstance(value, list):
        return [_nullable_as_type(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _nullable_as_type(v) for k, v in value.items()}
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _lookup_in(contents: dict[str, Any]) -> Any:
    def lookup(uri: str) -> Any:
        return contents[uri.split("#", 1)[0]]
    return lookup


def _short(message: str, limit: int = 160) -> str:
    message = message.strip().splitlines()[0] if message.strip() else message
    return message if len(message) <= limit else message[:limit - 1] + "…"
