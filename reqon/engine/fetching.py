"""Fetch steps: from a `get "/path" { … }` node to HTTP requests (LANGUAGE.md §4.1, §6.4, §6.5).

Everything static about a fetch step (source, pagination form, `allow`,
timeouts, the path template) is worked out once per step and cached, so a
parallel loop of thousands of iterations only evaluates what really changes:
the path placeholders, `params`, `headers`, `body` and `until`.
"""
from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from reqon import ast
from reqon import values as V
from reqon.engine.checkpoints import Checkpoints
from reqon.errors import RunError
from reqon.engine.expressions import UNBOUND, Expressions, Scope
from reqon.http.model import Allow, HttpRequest, HttpResponse, RetryPolicy

if TYPE_CHECKING:
    from reqon.engine.openapi_sources import OpenApiSource
    from reqon.http.client import HttpRuntime
    from reqon.openapi.document import Operation
    from reqon.openapi.validation import DocumentSchemas

Value = Any
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
DEFAULT_MAX_PAGES = 1000


@dataclass(frozen=True)
class Paginate:
    kind: str  # offset | page | cursor
    param: str
    size: int
    cursor_path: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Since:
    """`since: lastSync …` (checkpointed) or `since: <expr>` (sent as is)."""

    key: str | None = None
    param: str = "since"
    format: str = "iso"
    update_from: tuple[str, ...] | None = None
    expr: Any = None


@dataclass(frozen=True)
class FetchPlan:
    method: str
    source: str
    template: tuple[str | tuple[str, ...], ...] | None  # literal path: text pieces and placeholder paths
    path_expr: Any
    params: Any
    headers: Any
    body: Any
    until: Any
    retry: Any
    paginate: Paginate | None
    items: tuple[str, ...] | None
    max_pages: int
    since: Since | None
    timeout_ms: float | None
    allow: Allow
    operation: Operation | None = None  # a `call` (§4.2): path placeholders are filled from params first


class FetchPlanner:
    def __init__(self, *, expressions: Expressions, http: HttpRuntime | None, default_source: str | None,
                 checkpoints: Checkpoints | None, mission_scope: Scope,
                 openapi: Mapping[str, OpenApiSource] | None = None) -> None:
        self.x = expressions
        self.openapi = openapi or {}
        self._schemas: dict[str, DocumentSchemas] = {}
        self.http = http
        self.default_source = default_source
        self.checkpoints = checkpoints
        self.mission_scope = mission_scope
        self._plans: dict[int, FetchPlan] = {}
        self._policies: dict[int, RetryPolicy] = {}
        # Told about every response (each page of a paginated fetch): `--verbose` logs requests.
        self.on_response: Callable[[HttpResponse], None] = _ignore
        # Told about each response that does not match its operation's schema (validateResponses).
        self.on_warning: Callable[[str, ast.Span], None] = _ignore_warning

    # ------------------------------------------------------------ plans
    def plan(self, step: ast.Fetch | ast.CallStep) -> FetchPlan:
        plan = self._plans.get(id(step))
        if plan is None:
            plan = self._plans[id(step)] = self._make_plan(step)
        return plan

    def _make_plan(self, step: ast.Fetch | ast.CallStep) -> FetchPlan:
        o = {e.key: e for e in step.options.entries} if step.options else {}
        value = (lambda k: o[k].value if k in o else None)
        operation = None
        if isinstance(step, ast.CallStep):
            operation = self._operation(step)
            method, source, path_expr = operation.method, step.source.name, None
            template: tuple[str | tuple[str, ...], ...] | None = _call_template(operation.path)
        else:
            literal_path = step.path if isinstance(step.path, ast.Literal) and step.path.kind == "string" else None
            source = step.source.name if step.source is not None else self._source_name(value("source"))
            method, path_expr = step.method.upper(), step.path
            template = _template(str(literal_path.value)) if literal_path is not None else None
        return FetchPlan(
            method=method,
            source=source,
            template=template,
            path_expr=path_expr,
            operation=operation,
            params=value("params"), headers=value("headers"), body=value("body"), until=value("until"),
            retry=value("retry"),
            paginate=_paginate(value("paginate")),
            items=tuple(str(self._const(value("items"))).split(".")) if "items" in o else None,
            max_pages=int(self._const(value("maxPages")) or DEFAULT_MAX_PAGES),
            since=self._since(o.get("since")),
            timeout_ms=self._const(value("timeout")),
            allow=_allow(self._const(value("allow"))),
        )

    def _operation(self, step: ast.CallStep) -> Operation:
        found = self.openapi.get(step.source.name)
        operation = found.document.operation(step.operation.name) if found is not None else None
        if operation is None:  # the checker and the runner's start-up rule this out
            raise RunError.runtime(f"call: source {step.source.name} has no operation '{step.operation.name}'")
        return operation

    def _const(self, expr: Any) -> Any:
        return None if expr is None else self.x.eval(expr, self.mission_scope)

    def _source_name(self, expr: Any) -> str:
        if isinstance(expr, ast.Var):
            return expr.name
        if isinstance(expr, ast.Literal) and isinstance(expr.value, str):
            return expr.value
        if self.default_source is None:
            raise RunError.runtime("fetch: the mission declares no source")
        return self.default_source

    def _since(self, entry: ast.Entry | None) -> Since | None:
        if entry is None:
            return None
        expr = entry.value
        is_last_sync = (isinstance(expr, ast.Var) and expr.name == "lastSync") or (
            isinstance(expr, ast.FuncCall) and expr.func.name == "lastSync")
        if not is_last_sync:
            return Since(expr=expr)
        key = None
        if isinstance(expr, ast.FuncCall) and expr.args:
            key = V.to_string(self.x.eval(expr.args[0], self.mission_scope))
        settings = self.x.eval_options(entry.settings, self.mission_scope) if entry.settings is not None else {}
        update_from = settings.get("updateFrom")
        return Since(key=key, param=str(settings.get("param", "since")), format=str(settings.get("format", "iso")),
                     update_from=tuple(str(update_from).split(".")) if update_from else None)

    def retry_policy(self, options: dict[str, Any], scope: Scope) -> RetryPolicy:
        """A retry object (§4.1.5) from `retry: { … }` or the `retry` directive's options."""
        fields = {k: self.x.eval_option(k, v, scope) for k, v in options.items() if k != "delay"}
        return _policy(fields, explicit=True)

    # ------------------------------------------------------------ running a fetch
    async def fetch(self, step: ast.Fetch | ast.CallStep, scope: Scope,
                    staged: dict[str, dict[str, Any]]) -> tuple[Value, Value]:
        plan = self.plan(step)
        if self.http is None:
            raise RunError.runtime("no HTTP sources are available here")
        client = self.http.source(plan.source)
        params = _params(self.x.eval(plan.params, scope)) if plan.params is not None else []
        if plan.operation is not None:
            path, params, filled = self._call_path(plan, params, scope)
        else:
            path, filled = self._path(plan, scope), {}
        request = HttpRequest(
            method=plan.method, path=path, params=params,
            headers=_object_or_none("headers", self.x.eval(plan.headers, scope)) if plan.headers is not None else None,
            body=self.x.eval(plan.body, scope) if plan.body is not None else None,
            timeout_ms=plan.timeout_ms, retry=self._retry_of(plan, scope), allow=plan.allow,
        )
        if plan.operation is not None and self.openapi[plan.source].validate_requests:
            self._check_request(plan, request, filled, client.settings.headers)
        started = time.monotonic()
        before = _now_ms()
        since_params, checkpoint_key = self._since_params(plan, path, scope)
        if plan.paginate is None:
            response = await self._send(plan, client, _with_extra(request, since_params), step.span)
            body, pages, last = response.body, 1, response
        else:
            body, pages, last = await self._paginate(plan, client, request, since_params, scope, step.span)
        if checkpoint_key is not None and plan.since is not None:
            staged[checkpoint_key] = _checkpoint(plan.since, body, before)
        elapsed = (time.monotonic() - started) * 1000
        return body, last.binding(pages=pages, elapsed_ms=elapsed)

    async def _send(self, plan: FetchPlan, client: Any, request: HttpRequest, span: ast.Span) -> HttpResponse:
        response: HttpResponse = await client.send(request)
        self.on_response(response)
        if plan.operation is not None and 200 <= response.status < 300 and self.openapi[plan.source].validate_responses:
            self._check_response(plan, plan.operation, response, span)
        return response

    # ------------------------------------------------------------ OpenAPI calls (§4.2)
    def _call_path(self, plan: FetchPlan, params: list[tuple[str, Value]],
                   scope: Scope) -> tuple[str, list[tuple[str, Value]], dict[str, Value]]:
        """Placeholders from `params` first, then from variables in scope; the rest stays query."""
        assert plan.template is not None
        given = dict(params)
        filled: dict[str, Value] = {}
        out = []
        for piece in plan.template:
            if isinstance(piece, str):
                out.append(piece)
                continue
            name = piece[0]
            value = given[name] if name in given else scope.lookup(name)
            if value is UNBOUND:
                raise RunError.runtime(f"call {plan.source}.{_op_id(plan)}: path parameter {{{name}}} is neither in "
                                       "params nor a variable in scope")
            if value is None:
                raise RunError.runtime(f"path placeholder {{{name}}} is null")
            filled[name] = value
            out.append(quote(V.to_string(value), safe="-._~"))
        return "".join(out), [(k, v) for k, v in params if k not in filled], filled

    def _schemas_of(self, source: str) -> DocumentSchemas:
        schemas = self._schemas.get(source)
        if schemas is None:
            from reqon.openapi.validation import DocumentSchemas
            schemas = self._schemas[source] = DocumentSchemas(self.openapi[source].document)
        return schemas

    def _check_request(self, plan: FetchPlan, request: HttpRequest, filled: dict[str, Value],
                       source_headers: dict[str, Value]) -> None:
        assert plan.operation is not None
        checks = self._schemas_of(plan.source).request(plan.operation)
        headers = {**source_headers, **(request.headers or {})}
        problems = checks.problems(dict(request.params), filled, headers, request.body)
        if problems:
            raise RunError("validation", f"call {plan.source}.{_op_id(plan)}: the request does not match the "
                                         f"OpenAPI document, nothing was sent: {'; '.join(problems)}")

    def _check_response(self, plan: FetchPlan, operation: Operation, response: HttpResponse, span: ast.Span) -> None:
        check = self._schemas_of(plan.source).response(operation, response.status, response.headers.get("content-type"))
        if check is None:
            return
        problems = check.problems(response.body)
        if problems:
            detail = "; ".join(f"{p.path}: {p.message}" for p in problems)
            self.on_warning(f"call {plan.source}.{_op_id(plan)}: response {response.status} does not match the "
                            f"OpenAPI document: {detail}", span)

    def _retry_of(self, plan: FetchPlan, scope: Scope) -> RetryPolicy:
        if plan.retry is None:
            return RetryPolicy()
        if isinstance(plan.retry, ast.ObjectLit) and all(
                isinstance(e, ast.Entry) and isinstance(e.value, (ast.Literal, ast.Var)) for e in plan.retry.entries):
            cached = self._policies.get(id(plan.retry))
            if cached is None:
                cached = self._policies[id(plan.retry)] = _policy(self.x.eval_options(plan.retry, scope),
                                                                  explicit=True)
            return cached
        value = self.x.eval_options(plan.retry, scope)
        return _policy(value if isinstance(value, dict) else {}, explicit=True)

    def _path(self, plan: FetchPlan, scope: Scope) -> str:
        if plan.template is None:
            value = self.x.eval(plan.path_expr, scope)
            if not isinstance(value, str):
                raise RunError.runtime(f"fetch: the path must be a string, got {V.type_of(value)}")
            return value
        out = []
        for piece in plan.template:
            if isinstance(piece, str):
                out.append(piece)
                continue
            value = self._placeholder(piece, scope)
            out.append(quote(V.to_string(value), safe="-._~"))
        return "".join(out)

    def _placeholder(self, names: tuple[str, ...], scope: Scope) -> Value:
        value = self.x.eval(ast.Var(name=names[0]), scope)
        for name in names[1:]:
            value = V.member(value, name)
        if value is None:
            raise RunError.runtime(f"path placeholder {{{'.'.join(names)}}} is null")
        return value

    def _since_params(self, plan: FetchPlan, path: str, scope: Scope) -> tuple[list[tuple[str, Value]], str | None]:
        since = plan.since
        if since is None:
            return [], None
        if since.expr is not None:
            return [("since", V.to_string(self.x.eval(since.expr, scope)))], None
        key = since.key or f"{plan.source}:{path.split('?', 1)[0].rstrip('/')}"
        synced = self.checkpoints.synced_at(key) if self.checkpoints else None
        if synced is None:
            return [], key
        return [(since.param, _format_checkpoint(synced, since.format))], key

    async def _paginate(self, plan: FetchPlan, client: Any, request: HttpRequest, since_params: list[tuple[str, Value]],
                        scope: Scope, span: ast.Span) -> tuple[list[Value], int, HttpResponse]:
        paginate = plan.paginate
        assert paginate is not None
        items: list[Value] = []
        cursor: Value = None
        seen_cursors: set[str] = set()
        previous: list[Value] | None = None
        n = 0
        while True:
            extra = list(since_params)
            if paginate.kind == "offset":
                extra.append((paginate.param, n * paginate.size))
            elif paginate.kind == "page":
                extra.append((paginate.param, n + 1))
            elif cursor is not None:
                extra.append((paginate.param, cursor))
            response = await self._send(plan, client, _with_extra(request, extra), span)
            page_items = _pointing(response, lambda: _page_items(response.body, plan.items))
            items.extend(page_items)
            n += 1
            if plan.until is not None and V.truthy(
                    self.x.eval(plan.until, Scope(scope, {"response": response.body}), response.body)):
                break
            more, cursor = _next_page(paginate, response.body, page_items, cursor)
            if not more:
                break
            if paginate.kind == "cursor":
                marker = V.to_string(cursor)
                if marker in seen_cursors:
                    raise _about(response, RunError.runtime(f"pagination: page {n} returned cursor {marker!r} "
                                                            "again; stopping instead of looping forever"))
                seen_cursors.add(marker)
            elif page_items == previous:
                raise _about(response, RunError.runtime(
                    f"pagination: page {n} repeated page {n - 1} (does the API ignore ?{paginate.param}=?); "
                    "stopping instead of looping forever"))
            previous = page_items
            if n >= plan.max_pages:
                raise _about(response, RunError.runtime(
                    f"pagination did not finish within maxPages = {plan.max_pages} pages"))
        return items, n, response

    def commit(self, staged: dict[str, dict[str, Any]]) -> None:
        if self.checkpoints is not None:
            self.checkpoints.commit(staged)


# ---------------------------------------------------------------- helpers


def _ignore(response: HttpResponse) -> None:
    pass


def _ignore_warning(message: str, span: ast.Span) -> None:
    pass


def _op_id(plan: FetchPlan) -> str:
    assert plan.operation is not None
    operation_id = plan.operation.operation_id
    return operation_id if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", operation_id) else f'"{operation_id}"'


def _call_template(path: str) -> tuple[str | tuple[str, ...], ...]:
    """An OpenAPI path template: a placeholder is one parameter name, dots and all."""
    pieces: list[str | tuple[str, ...]] = []
    last = 0
    for m in _PLACEHOLDER.finditer(path):
        pieces.append(path[last:m.start()])
        pieces.append((m.group(1),))
        last = m.end()
    pieces.append(path[last:])
    return tuple(p for p in pieces if p != "")


def _template(path: str) -> tuple[str | tuple[str, ...], ...]:
    pieces: list[str | tuple[str, ...]] = []
    last = 0
    for m in _PLACEHOLDER.finditer(path):
        pieces.append(path[last:m.start()])
        pieces.append(tuple(m.group(1).split(".")))
        last = m.end()
    pieces.append(path[last:])
    return tuple(p for p in pieces if p != "")


def _paginate(expr: Any) -> Paginate | None:
    """The static form `offset|page|cursor(param, size[, "path"])`; the checker (E316,
    E304) guarantees the shape, so the arguments are literals or bare words here."""
    if not isinstance(expr, ast.FuncCall):
        return None
    args: tuple[Any, ...] = expr.args

    def word(a: Any) -> str:
        return a.name if isinstance(a, ast.Var) else str(a.value)
    cursor_path = None
    if expr.func.name == "cursor" and len(args) > 2:
        cursor_path = tuple(str(args[2].value).split("."))
    return Paginate(kind=expr.func.name, param=word(args[0]), size=int(args[1].value), cursor_path=cursor_path)


def _allow(value: Any) -> Allow:
    if not isinstance(value, list):
        return Allow()
    statuses = frozenset(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    classes = frozenset(int(v[0]) for v in value if isinstance(v, str) and v in ("4xx", "5xx"))
    return Allow(statuses=statuses, classes=classes)


def _policy(fields: dict[str, Any], *, explicit: bool) -> RetryPolicy:
    backoff = fields.get("backoff", "exponential")
    policy = RetryPolicy(
        max_attempts=int(fields.get("maxAttempts", 3)),
        backoff=str(backoff),
        initial_delay_ms=float(fields.get("initialDelay", 1000)),
        max_delay_ms=float(fields.get("maxDelay", 30000)),
    )
    if explicit and "explicit" in {f.name for f in dataclasses.fields(RetryPolicy)}:
        policy = dataclasses.replace(policy, explicit=True)  # type: ignore[call-arg]
    return policy


def _params(value: Value) -> list[tuple[str, Value]]:
    obj = _object_or_none("params", value)
    return list(obj.items()) if obj else []


def _object_or_none(what: str, value: Value) -> dict[str, Value] | None:
    if value is None or isinstance(value, dict):
        return value
    raise RunError.runtime(f"fetch: {what} must be an object, got {V.type_of(value)}")


def _about(response: HttpResponse, error: RunError) -> RunError:
    """The error, its message led by the request it is about (method and redacted URL), as
    every HTTP failure's is: with many fetches in a mission, the user can find the one."""
    return RunError(kind=error.kind, message=f"{response.method} {response.url}: {error.message}",
                    status=error.status, span=error.span)


def _pointing(response: HttpResponse, read: Callable[[], list[Value]]) -> list[Value]:
    try:
        return read()
    except RunError as exc:
        raise _about(response, exc) from None


def _with_extra(request: HttpRequest, extra: list[tuple[str, Value]]) -> HttpRequest:
    return dataclasses.replace(request, extra_params=extra) if extra else request


def _dotted(value: Value, path: tuple[str, ...]) -> Value:
    for name in path:
        value = V.member(value, name)
    return value


def _page_items(body: Value, items_path: tuple[str, ...] | None) -> list[Value]:
    if items_path is not None:
        found = _dotted(body, items_path)
        if found is None:
            return []
        if not isinstance(found, list):
            raise RunError(kind="decode", message=f"items: {'.'.join(items_path)} is {V.a_type(found)}, expected a list")
        return found
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, list):
                return value
    return []


def _next_page(p: Paginate, body: Value, page_items: list[Value], cursor: Value) -> tuple[bool, Value]:
    if p.kind in ("offset", "page"):
        return len(page_items) >= p.size, cursor
    if p.cursor_path is None:
        return False, cursor
    value = _dotted(body, p.cursor_path)
    usable = (isinstance(value, str) and value != "") or (isinstance(value, (int, float)) and not isinstance(value, bool))
    return usable, value


def _now_ms() -> int:
    return int(time.time() * 1000)


def _checkpoint(since: Since, body: Value, before_ms: int) -> dict[str, Any]:
    latest = None
    if since.update_from is not None:
        for item in body if isinstance(body, list) else [body]:
            ms = _as_instant(_dotted(item, since.update_from))
            if ms is not None and (latest is None or ms > latest):
                latest = ms
    count = len(body) if isinstance(body, list) else (0 if body is None else 1)
    return {"syncedAt": V.format_timestamp(latest if latest is not None else before_ms), "recordCount": count}


def _as_instant(value: Value) -> int | None:
    if isinstance(value, str):
        return V.parse_timestamp(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value if value >= 1e11 else value * 1000)
    return None


def _format_checkpoint(synced_at: str, fmt: str) -> Value:
    ms = V.parse_timestamp(synced_at)
    if ms is None:
        return synced_at
    if fmt == "unix":
        return ms // 1000
    if fmt == "unix-ms":
        return ms
    if fmt == "date-only":
        return V.format_timestamp(ms)[:10]
    return V.format_timestamp(ms)
