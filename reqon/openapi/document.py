"""Loading an OpenAPI document: parse, check the shape, index the operations.

Parsing uses the json module for JSON (ten times faster than YAML on GitHub's 13 MB
document) and PyYAML's C loader otherwise. The shape is checked against the official
meta-schema of the document's version by openapi-spec-validator (with its jsonschema-rs
backend: 0.2 s for GitHub's document where the pure-Python backend takes 4 s). `$ref`s
are followed by jsonschema-path, to this document and to other files beside it; cycles
are harmless because references are resolved one access at a time, never expanded.

openapi-spec-validator's full semantic pass is not run: it takes 9–12 s on GitHub's
document, and what it adds over the meta-schema (unresolvable references, duplicate
operationIds) is checked here while indexing, where the index needs it anyway.
"""
from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
VERSIONS = ("2.0", "3.0", "3.1")


class DocumentError(Exception):
    """A document that cannot be used: `location` names it, `pointer` is the JSON pointer
    of the offending value ("" for the document as a whole)."""

    def __init__(self, location: str, problem: str, pointer: str = "") -> None:
        self.location = location
        self.problem = problem
        self.pointer = pointer
        where = f" at {pointer}" if pointer else ""
        super().__init__(f"OpenAPI document {location}{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str  # path | query | header | cookie (3.x); also body | formData (2.0)
    required: bool


@dataclass(frozen=True, slots=True)
class Operation:
    operation_id: str
    method: str  # upper case
    path: str  # the template, e.g. /orgs/{org}/repos
    pointer: str  # JSON pointer of the operation object in the main document
    parameters: tuple[Parameter, ...]
    # Alternatives of the documented security requirement, each a tuple of scheme names;
    # () means "documented as open"; None means the document says nothing.
    security: tuple[tuple[str, ...], ...] | None

    @property
    def path_parameters(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters if p.location == "path")


@dataclass
class Document:
    """A loaded document. `contents` (the parsed files, by URI) is what validation and the
    mock server read; the checker needs only the index, which is why a cached document
    loads its contents lazily."""

    location: str
    uri: str  # base URI: file:///… or http(s)://…
    version: str  # 2.0 | 3.0 | 3.1
    base_url: str | None
    operations: dict[str, Operation]
    schemes: dict[str, str]  # security scheme name -> auth kind of §3.1.1
    others: dict[str, str] = field(default_factory=dict)  # other files referred to: URI -> content hash
    _contents: dict[str, Any] | None = None
    _load_contents: Callable[[], dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def contents(self) -> dict[str, Any]:
        """Every parsed file of the document by URI, the main one under `uri`."""
        if self._contents is None:
            assert self._load_contents is not None
            self._contents = self._load_contents()
        return self._contents

    @property
    def root(self) -> dict[str, Any]:
        return self.contents[self.uri]

    def operation(self, operation_id: str) -> Operation | None:
        return self.operations.get(operation_id)


# ---------------------------------------------------------------- parsing


def parse(data: bytes, location: str) -> Any:
    """JSON or YAML text to a value; raises DocumentError with the line and column."""
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            return json.loads(data)
        except UnicodeDecodeError as exc:
            raise DocumentError(location, f"not UTF-8 text ({exc.reason})") from None
        except json.JSONDecodeError as exc:
            raise DocumentError(location, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    import yaml  # only documents in YAML pay for its import

    try:
        return yaml.load(data, Loader=_loader())
    except yaml.YAMLError as exc:
        raise DocumentError(location, f"not valid YAML or JSON: {_yaml_problem(exc)}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DocumentError(location, f"not valid YAML or JSON: {exc}") from None


@functools.cache
def _loader() -> type:
    """The C loader, minus YAML 1.1's timestamps: a date in a document is a string, as in
    JSON, so every document value is plain JSON data (and marshal can cache it)."""
    import yaml

    resolvers = {first: [(tag, regexp) for tag, regexp in pairs if tag != "tag:yaml.org,2002:timestamp"]
                 for first, pairs in yaml.CSafeLoader.yaml_implicit_resolvers.items()}
    return type("DocumentLoader", (yaml.CSafeLoader,), {"yaml_implicit_resolvers": resolvers})


def _yaml_problem(exc: Exception) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def is_url(document: str) -> bool:
    """A `from` document given as a URL (fetched at mission start) rather than a path."""
    return document.startswith(("http://", "https://"))


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_of(root: Any, location: str) -> str:
    if not isinstance(root, dict):
        raise DocumentError(location, "not an OpenAPI document: the top level is not an object")
    if "swagger" in root:
        if str(root["swagger"]) != "2.0":
            raise DocumentError(location, f"unsupported Swagger version {root['swagger']!r} (only 2.0)", "/swagger")
        return "2.0"
    given = root.get("openapi")
    if given is None:
        raise DocumentError(location, "not an OpenAPI document: no 'openapi' or 'swagger' field")
    text = str(given)
    for version in ("3.0", "3.1"):
        if text == version or text.startswith(version + "."):
            return version
    raise DocumentError(location, f"unsupported OpenAPI version {text!r} (3.0.x, 3.1.x and Swagger 2.0 are)", "/openapi")


# ---------------------------------------------------------------- the meta-schema


def check_shape(root: dict[str, Any], version: str, location: str) -> None:
    """The document against its version's official JSON Schema; the first error, positioned."""
    from openapi_spec_validator import schemas

    validator = {"2.0": schemas.openapi_v2_schema_validator, "3.0": schemas.openapi_v30_schema_validator,
                 "3.1": schemas.openapi_v31_schema_validator}[version]
    if validator.is_valid(root):
        return
    errors = sorted(validator.iter_errors(root), key=lambda e: -len(list(e.path)))
    best = errors[0]
    raise DocumentError(location, _first_line(best.message), pointer_of(best.path))


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "does not match the OpenAPI schema"


def pointer_of(parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def fragment(pointer: str) -> str:
    """A JSON pointer as a URI fragment (`{` and `}` of path templates are not URI characters)."""
    return quote(pointer, safe="/~-._!$&'()*+,;=:@")


# ---------------------------------------------------------------- indexing


class Indexer:
    """Walks paths and operations once, following `$ref`s through jsonschema-path."""

    def __init__(self, location: str, uri: str, root: dict[str, Any], version: str, contents: dict[str, Any],
                 read_other: Callable[[str], bytes] | None) -> None:
        self.location, self.uri, self.root, self.version = location, uri, root, version
        self.contents = contents
        self.read_other = read_other
        self.hashes: dict[str, str] = {}  # other file URI -> content hash, for the cache

    def _retrieve(self, uri: str) -> Any:
        if self.read_other is None:
            raise DocumentError(self.location, f"references to other documents are followed for local documents "
                                               f"only: {uri}")
        name = uri.split("#", 1)[0]
        try:
            data = self.read_other(name)
        except OSError as exc:
            raise DocumentError(self.location, f"cannot read the referenced file {name}: "
                                               f"{getattr(exc, 'strerror', None) or exc}") from None
        value = parse(data, name)
        self.contents[name] = value
        self.hashes[name] = content_hash(data)
        return value

    def document(self) -> Document:
        from jsonschema_path import SchemaPath
        from referencing.exceptions import Unresolvable

        spec = SchemaPath.from_dict(self.root, base_uri=self.uri,
                                    handlers={"file": self._retrieve, "http": self._retrieve,
                                              "https": self._retrieve})
        operations: dict[str, Operation] = {}
        top_security = _security(self.root.get("security"))
        for pointer, path, method, op_path, item_path in self._operations(spec):
            try:
                operation = self._operation(pointer, path, method, op_path, item_path, top_security)
            except Unresolvable as exc:
                raise DocumentError(self.location, _ref_problem(exc), pointer) from None
            if operation is None:
                continue
            earlier = operations.get(operation.operation_id)
            if earlier is not None:
                raise DocumentError(self.location, f"operationId {operation.operation_id!r} is used twice "
                                                   f"(also at {earlier.pointer})", pointer + "/operationId")
            operations[operation.operation_id] = operation
        return Document(self.location, self.uri, self.version, base_url(self.root, self.version), operations,
                        security_schemes(self.root, self.version), others=self.hashes, _contents=self.contents)

    def _operations(self, spec: Any) -> Iterator[tuple[str, str, str, Any, Any]]:
        from referencing.exceptions import Unresolvable

        paths = spec / "paths"
        for path in self.root.get("paths", {}):
            item = paths / path
            try:
                keys = set(item.keys())
            except Unresolvable as exc:
                raise DocumentError(self.location, _ref_problem(exc), pointer_of(["paths", path])) from None
            for method in METHODS:
                if method in keys:
                    yield pointer_of(["paths", path, method]), path, method, item / method, item

    def _operation(self, pointer: str, path: str, method: str, op: Any, item: Any,
                   top_security: tuple[tuple[str, ...], ...] | None) -> Operation | None:
        keys = set(op.keys())
        if "operationId" not in keys:
            return None
        operation_id = (op / "operationId").read_value()
        if not isinstance(operation_id, str):
            raise DocumentError(self.location, "operationId is not a string", pointer + "/operationId")
        merged: dict[tuple[str, str], Parameter] = {}
        for owner in (item, op):
            if "parameters" not in set(owner.keys()):
                continue
            for param in owner / "parameters":
                name, where = (param / "name").read_value(), (param / "in").read_value()
                required = "required" in set(param.keys()) and (param / "required").read_value() is True
                merged[(name, where)] = Parameter(name, where, required or where == "path")
        security = _security((op / "security").read_value() if "security" in keys else None)
        return Operation(operation_id, method.upper(), path, pointer, tuple(merged.values()),
                         security if "security" in keys else top_security)


def _ref_problem(exc: BaseException) -> str:
    """What a failed `$ref` means: the reason a file could not be read, if that was it."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, DocumentError):
            return cause.problem
        cause = cause.__cause__ or cause.__context__
    ref = getattr(exc, "ref", None)
    return f"unresolvable reference {ref!r}" if ref else f"unresolvable reference ({exc})"


def _security(value: Any) -> tuple[tuple[str, ...], ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(tuple(sorted(req)) for req in value if isinstance(req, dict))


def security_schemes(root: dict[str, Any], version: str) -> dict[str, str]:
    """Scheme name -> the auth kind of §3.1.1 that satisfies it."""
    if version == "2.0":
        schemes = root.get("securityDefinitions") or {}
    else:
        schemes = (root.get("components") or {}).get("securitySchemes") or {}
    kinds: dict[str, str] = {}
    for name, scheme in schemes.items():
        if not isinstance(scheme, dict):
            continue
        kind = scheme.get("type")
        if kind == "http":
            kinds[name] = "basic" if str(scheme.get("scheme", "")).lower() == "basic" else "bearer"
        elif kind == "basic":
            kinds[name] = "basic"
        elif kind == "apiKey":
            kinds[name] = "api_key"
        elif kind in ("oauth2", "openIdConnect"):
            kinds[name] = "oauth2"
    return kinds


def base_url(root: dict[str, Any], version: str) -> str | None:
    """3.x: the first server with its variables at their defaults; 2.0: scheme://host/basePath."""
    if version == "2.0":
        host = root.get("host")
        if not host:
            return None
        schemes = root.get("schemes") or ["https"]
        return f"{schemes[0]}://{host}{(root.get('basePath') or '').rstrip('/')}"
    servers = root.get("servers") or []
    if not servers or not isinstance(servers[0], dict) or "url" not in servers[0]:
        return None
    url = str(servers[0]["url"])
    for name, variable in (servers[0].get("variables") or {}).items():
        url = url.replace("{" + name + "}", str(variable.get("default", "")))
    return url.rstrip("/")


def resolve_base(document: Document) -> str | None:
    """The base URL as an absolute URL: a relative server URL is relative to the document's
    own URL (OpenAPI 3 §4.8.5), which only means something for a URL document."""
    url = document.base_url
    if url is None:
        return None
    if url.startswith(("http://", "https://")):
        return url
    if document.uri.startswith(("http://", "https://")):
        return urljoin(document.uri, url).rstrip("/")
    return url
