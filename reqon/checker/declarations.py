"""Mission members (§2, §3): the symbol table, sources, stores, schemas, transforms, settings.

Runs first: it fills the symbol table of the `Context` (E203 for duplicates,
E106 for reserved names), then checks each declaration on its own. Expressions
inside declarations (source `base`, headers and auth settings, transform fields)
are evaluated in the mission scope, where `response` and `http` do not exist.
"""
from __future__ import annotations

from pathlib import Path

from reqon import ast
from reqon.checker import openapi
from reqon.checker import options as opt
from reqon.checker.context import ActionSummary, Context, head, suggest
from reqon.checker.expressions import ExprChecker
from reqon.checker.schedule import check_schedules
from reqon.checker.scopes import Scope
from reqon.stores import STORE_KINDS, validate_target
from reqon.values import SCHEMA_TYPE_NAMES

MODES = ("wait-all", "fail-fast", "best-effort", "race")
SOURCE_OPTIONS = ("auth", "base", "headers", "timeout", "maxInFlight", "maxResponseBytes", "rateLimit",
                  "circuitBreaker", "validateResponses", "validateRequests")
AUTH_SETTINGS = {"none": (), "bearer": ("token",), "basic": ("username", "password"),
                 "api_key": ("key", "header", "query", "prefix"),
                 "oauth2": ("accessToken", "refreshToken", "tokenUrl", "clientId", "clientSecret", "scopes")}
RATE_LIMIT_FIELDS = ("strategy", "maxWait", "fallbackRpm", "requestsPerMinute")
STRATEGIES = ("pause", "throttle", "fail")
BREAKER_FIELDS = ("failureThreshold", "failureWindow", "resetTimeout", "successThreshold")
PERSISTENT_KINDS = ("file", "sql", "nosql", "postgrest")


def build_symbols(ctx: Context) -> None:
    """Register every declaration by kind; E203 names both places, E106 reserved names."""
    m = ctx.mission
    ctx.check_name(m.name, "mission")
    groups: list[tuple[str, dict, tuple]] = [  # type: ignore[type-arg]
        ("source", ctx.sources, m.sources), ("store", ctx.stores, m.stores),
        ("schema", ctx.schemas, m.schemas), ("transform", ctx.transforms, m.transforms),
        ("action", ctx.actions, m.actions)]
    for kind, table, decls in groups:
        for decl in decls:
            name = decl.name
            ctx.check_name(name, kind)
            first = table.get(name.name)
            if first is None:
                table[name.name] = decl
            else:
                ctx.error("E203", name.span, f"duplicate {kind} '{name.name}'",
                          notes=(("first declared here", first.name.span),))


def check_declarations(ctx: Context) -> None:
    mission_scope = Scope(None)
    for source in ctx.mission.sources:
        _source(ctx, source, mission_scope)
    _stores(ctx)
    for schema in ctx.mission.schemas:
        _fields(ctx, schema.fields, schema.name.name)
    for transform in ctx.mission.transforms:
        _transform(ctx, transform, mission_scope)
    _settings(ctx)
    check_schedules(ctx)


# ---------------------------------------------------------------- sources
def _source(ctx: Context, source: ast.Source, scope: Scope) -> None:
    exprs = ExprChecker(ctx, ActionSummary(), "a source declaration")
    entries = opt.keyed_entries(ctx, source.options.entries, SOURCE_OPTIONS, "source entry")
    name = source.name.name
    auth = entries.get("auth")
    kind = _auth(ctx, auth, exprs, scope) if auth is not None else None
    if auth is None:
        ctx.error("E308", source.name.span, f"source '{name}' has no 'auth'",
                  "write auth: none for an API without authentication")
    if "base" not in entries and source.document is None:
        ctx.error("E308", source.name.span, f"source '{name}' has no 'base'",
                  "give base: \"https://…\" or an OpenAPI document with 'from'")
    for key, entry in entries.items():
        if key == "auth":
            continue
        opt.no_settings(ctx, entry)
        value = entry.value
        if key == "base":
            exprs.check(value, scope, False)
        elif key == "headers":
            _source_headers(ctx, entry, kind, source)
            exprs.check(value, scope, False)
        elif key == "timeout":
            opt.duration(ctx, value, key, positive=True)
        elif key in ("maxInFlight", "maxResponseBytes"):
            opt.integer(ctx, value, key)
        elif key == "rateLimit":
            _rate_limit(ctx, value)
        elif key == "circuitBreaker":
            _circuit_breaker(ctx, value)
        elif key in ("validateResponses", "validateRequests"):
            opt.boolean(ctx, value, key)
            if source.document is None:
                ctx.warn("W515", entry.key_span, f"'{key}' has no effect without an OpenAPI document",
                         f"responses are validated only for sources declared with: source {name} from \"…\"")
    if source.document is not None:
        _load_operations(ctx, source)


def _auth(ctx: Context, entry: ast.Entry, exprs: ExprChecker, scope: Scope) -> str | None:
    kind = opt.word(ctx, entry.value, "auth kind", tuple(AUTH_SETTINGS))
    settings = entry.settings
    if kind is None or settings is None:
        return kind
    if kind == "none":
        ctx.error("E301", settings.span, "'auth: none' takes no settings")
        return kind
    fields = opt.settings_object(ctx, settings, AUTH_SETTINGS[kind], f"{kind} setting", "auth")
    for key, field in (fields or {}).items():
        if key == "scopes" and isinstance(field.value, (ast.Literal, ast.ObjectLit)):
            ctx.error("E318", field.value.span, f"'scopes' must be a list of strings, got {opt.describe(field.value)}")
        exprs.check(field.value, scope, False)
    return kind


def _source_headers(ctx: Context, entry: ast.Entry, kind: str | None, source: ast.Source) -> None:
    opt.not_a_list_or_scalar(ctx, entry.value, "headers")
    if kind in (None, "none") or not isinstance(entry.value, ast.ObjectLit):
        return
    for header in entry.value.entries:
        if isinstance(header, ast.Entry) and header.key.lower() == "authorization":
            ctx.warn("W514", header.key_span,
                     f"explicit Authorization header on source '{source.name.name}' (auth: {kind})",
                     "the authentication header replaces it")


def _rate_limit(ctx: Context, value: ast.Expr) -> None:
    fields = opt.settings_object(ctx, value, RATE_LIMIT_FIELDS, "rateLimit field", "rateLimit")
    for key, field in (fields or {}).items():
        opt.no_settings(ctx, field)
        if key == "strategy":
            opt.word(ctx, field.value, "strategy", STRATEGIES)
        elif key == "maxWait":
            opt.duration(ctx, field.value, key, positive=False)
        else:
            opt.integer(ctx, field.value, key)


def _circuit_breaker(ctx: Context, value: ast.Expr) -> None:
    fields = opt.settings_object(ctx, value, BREAKER_FIELDS, "circuitBreaker field", "circuitBreaker")
    for key, field in (fields or {}).items():
        opt.no_settings(ctx, field)
        if key in ("failureWindow", "resetTimeout"):
            opt.duration(ctx, field.value, key, positive=True)
        else:
            opt.integer(ctx, field.value, key)


def _load_operations(ctx: Context, source: ast.Source) -> None:
    """Read a local OpenAPI document once (E213 if unreadable); URL documents are the runtime's."""
    document = source.document
    assert document is not None
    if openapi.is_url(document):
        return
    directory = ctx.base_dir if ctx.base_dir is not None else Path(source.span.file).parent
    try:
        ctx.documents[source.name.name] = openapi.load_local(directory, document)
    except openapi.DocumentError as exc:
        ctx.error("E213", source.name.span, f"cannot load the OpenAPI document of source '{source.name.name}'",
                  str(exc))


# ---------------------------------------------------------------- stores
def _stores(ctx: Context) -> None:
    persistent: dict[tuple[str, str], ast.StoreDecl] = {}
    for store in ctx.mission.stores:
        kind = store.kind.name
        if store.name.name == "errors":
            ctx.warn("W517", store.name.span, "a store named 'errors' hides the failure list",
                     "inside this mission, 'errors' reads the store; rename it")
        if kind not in STORE_KINDS:
            ctx.error("E305", store.kind.span, f"unknown store kind '{kind}'",
                      *(suggest(kind, STORE_KINDS) or (f"expected one of {', '.join(STORE_KINDS)}",)))
            continue
        problem = validate_target(kind, store.target)
        if problem is not None:
            ctx.error("E310", store.target_span, problem)
            continue
        if kind in PERSISTENT_KINDS:
            first = persistent.setdefault((kind, store.target), store)
            if first is not store:
                ctx.warn("W513", store.target_span,
                         f"stores '{first.name.name}' and '{store.name.name}' share {kind}(\"{store.target}\")",
                         "they read and write the same data",
                         notes=(("first declared here", first.name.span),))


# ---------------------------------------------------------------- schemas and transforms
def _fields(ctx: Context, fields: tuple[ast.SchemaField, ...], owner: str) -> None:
    seen: dict[str, ast.SchemaField] = {}
    for f in fields:
        if f.name in seen:
            ctx.error("E302", head(f.span, len(f.name)), f"field '{f.name}' is given twice",
                      notes=(("first given here", head(seen[f.name].span, len(f.name))),))
        seen.setdefault(f.name, f)
        _type(ctx, f.type_expr, owner)


def _type(ctx: Context, t: ast.TypeExpr, owner: str) -> None:
    if isinstance(t, ast.InlineType):
        _fields(ctx, t.fields, owner)
        return
    where = head(t.span, len(t.name))
    if t.arg is not None:
        if t.name != "array":
            ctx.error("E313", where, f"type '{t.name}' takes no element type", "only array<T> has one")
        _type(ctx, t.arg, owner)
        return
    if t.name in SCHEMA_TYPE_NAMES:
        return
    if t.name in ctx.schemas:
        if t.name != owner:
            ctx.used_schemas.add(t.name)
        return
    ctx.error("E313", where, f"unknown type '{t.name}'", *suggest(t.name, SCHEMA_TYPE_NAMES | set(ctx.schemas)))


def _transform(ctx: Context, transform: ast.Transform, scope: Scope) -> None:
    exprs = ExprChecker(ctx, ActionSummary(), "a transform")
    first = transform.variants[0].target if transform.variants else None
    for variant in transform.variants:
        if variant.source is not None:
            name = variant.source.name
            if name in ctx.schemas:
                ctx.used_schemas.add(name)
            else:
                ctx.error("E208", variant.source.span, f"unknown schema '{name}'", *suggest(name, ctx.schemas))
        target = variant.target
        if target.name in ctx.schemas:
            ctx.used_schemas.add(target.name)
        if first is not None and target.name != first.name:
            ctx.error("E314", target.span,
                      f"variant of transform '{transform.name.name}' targets '{target.name}', not '{first.name}'",
                      "every variant of a transform must produce the same target",
                      notes=(("first target here", first.span),))
        if variant.where is not None:
            exprs.check(variant.where, scope, True)
        for entry in variant.fields.entries:
            exprs.check(entry.value, scope, True)


# ---------------------------------------------------------------- mission settings and schedule
def _settings(ctx: Context) -> None:
    seen: dict[str, ast.Setting] = {}
    for setting in ctx.mission.settings:
        where = head(setting.span, len(setting.key))
        if setting.key in seen:
            ctx.error("E302", where, f"mission setting '{setting.key}' is given twice",
                      notes=(("first given here", head(seen[setting.key].span, len(setting.key))),))
            continue
        seen[setting.key] = setting
        if setting.key == "maxConcurrency":
            opt.integer(ctx, setting.value, setting.key)
        else:
            opt.word(ctx, setting.value, setting.key, MODES, bare=False)


def mission_mode(ctx: Context) -> str | None:
    """The mission's valid `parallelMode`, if it declares one."""
    for setting in ctx.mission.settings:
        value = setting.value
        if (setting.key == "parallelMode" and isinstance(value, ast.Literal) and value.kind == "string"
                and value.value in MODES):
            return str(value.value)
    return None
