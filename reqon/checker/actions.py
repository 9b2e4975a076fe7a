"""The steps of one action (§4): scopes, options of each step and flow directives.

`ActionWalker` walks an action body once, in order, keeping the block scopes
of §5.4 (for E210, E217, E215, W507, W519), the anchor frames of `retry`
(E402, E406) and whether a step sits in a match-arm body (E401, E403). What
matters beyond the action (stores read and written, `errors` reads, jumps) goes
into its `ActionSummary`.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from reqon import ast
from reqon.checker import options as opt
from reqon.checker.context import ActionSummary, Context, head, suggest
from reqon.checker.expressions import ExprChecker
from reqon.checker.patterns import bind_pattern, check_arms
from reqon.checker.scopes import PREDEFINED, Binding, Scope

REQUEST_OPTIONS = ("source", "params", "headers", "body", "paginate", "until", "items", "maxPages",
                   "since", "retry", "timeout", "allow")
PAGINATION_ONLY = ("until", "items", "maxPages")
PAGINATION_KINDS = ("offset", "page", "cursor")
SINCE_SETTINGS = ("param", "format", "updateFrom")
SINCE_FORMATS = ("iso", "unix", "unix-ms", "date-only")
STORE_OPTIONS = ("key", "upsert", "partial")
QUEUE_OPTIONS = ("item", "key")
WAIT_OPTIONS = ("path", "timeout", "expectedEvents", "eventFilter", "retry", "storage")
STORAGE_FIELDS = ("target", "key")

_KEYWORD = {ast.CallStep: "call", ast.For: "for", ast.MapStep: "map", ast.Apply: "apply",
            ast.Validate: "validate", ast.StoreStep: "store", ast.Let: "let", ast.MatchStep: "match",
            ast.Wait: "wait", ast.Skip: "skip", ast.Continue: "continue", ast.Abort: "abort",
            ast.Retry: "retry", ast.Queue: "queue", ast.Jump: "jump"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z_][A-Za-z0-9_]*)*\}")


def step_head(step: ast.Step) -> ast.Span:
    """The keyword that starts a step: where step-level diagnostics point."""
    word = step.method if isinstance(step, ast.Fetch) else _KEYWORD[type(step)]
    return head(step.span, len(word))


def _ends_block(step: ast.Step) -> bool:
    """Directives after which nothing else in the same block runs (W503)."""
    if isinstance(step, ast.Jump):
        return step.then == "retry"
    return isinstance(step, (ast.Skip, ast.Continue, ast.Abort, ast.Queue, ast.Retry))


class _Frame:
    """One block on the way from the action body to the current step, for retry anchors."""

    __slots__ = ("anchored", "parallel_body")

    def __init__(self, parallel_body: bool) -> None:
        self.anchored = False
        self.parallel_body = parallel_body


Handler = Callable[[ast.Step, Scope, bool, bool], None]


class ActionWalker:
    """Checks the actions of one mission, one `check(action)` at a time.

    In the step handlers, `arm` means directly in a match-arm body and
    `in_match` inside any arm. One walker serves every action of a mission, so
    its dispatch tables are built once.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.action = ast.Action(name=ast.Ident(name=""), settings=(), misplaced=(), steps=())
        self.summary = ActionSummary()
        self.expr = ExprChecker(ctx, self.summary)
        self.frames: list[_Frame] = []
        self.has_parallel_loop = False
        self._handlers: dict[type, Handler] = {
            ast.Fetch: self._fetch, ast.CallStep: self._call, ast.For: self._for, ast.MapStep: self._map,
            ast.Apply: self._apply, ast.Validate: self._validate, ast.StoreStep: self._store,
            ast.Let: self._let, ast.MatchStep: self._match, ast.Wait: self._wait, ast.Skip: self._skip,
            ast.Continue: self._continue, ast.Abort: self._abort, ast.Retry: self._retry,
            ast.Queue: self._queue, ast.Jump: self._jump,
        }

    def check(self, action: ast.Action) -> None:
        self.action = action
        self.summary = self.expr.summary = self.ctx.summaries.setdefault(action.name.name, ActionSummary())
        self.has_parallel_loop = False
        self.block(action.steps, Scope(None), arm=False, in_match=False)
        self._settings()

    # ------------------------------------------------------------ action settings
    def _settings(self) -> None:
        seen: ast.ActionSetting | None = None
        placed = [(s, False) for s in self.action.settings] + [(s, True) for s in self.action.misplaced]
        for setting, misplaced in placed:
            where = head(setting.span, len(setting.key))
            if misplaced:
                self.ctx.error("E404", where, "action setting 'concurrency' after the first step",
                               "settings come before the first step of the action")
            if seen is not None:
                self.ctx.error("E302", where, "'concurrency' is given twice",
                               notes=(("first given here", head(seen.span, len(seen.key))),))
                continue
            seen = setting
            opt.integer(self.ctx, setting.value, "concurrency")
            if not self.has_parallel_loop:
                self.ctx.warn("W505", where, f"'concurrency' has no effect: action '{self.action.name.name}' "
                              "has no parallel loop", "it bounds the iterations of 'for … parallel' loops")

    # ------------------------------------------------------------ blocks
    def block(self, steps: tuple[ast.Step, ...], scope: Scope, *, arm: bool, in_match: bool,
              parallel_body: bool = False) -> None:
        scope.pending = _later_bindings(steps)
        frame = _Frame(parallel_body)
        self.frames.append(frame)
        ended_by: ast.Step | None = None
        reported = False
        for step in steps:
            if ended_by is not None and not reported:
                word = _KEYWORD[type(ended_by)]
                self.ctx.warn("W503", step_head(step), "unreachable step",
                              notes=((f"'{word}' before it ends the block", step_head(ended_by)),))
                reported = True
            self._handlers[type(step)](step, scope, arm, in_match)
            if isinstance(step, (ast.Fetch, ast.CallStep)):
                frame.anchored = True
            elif ended_by is None and _ends_block(step):
                ended_by = step
        self.frames.pop()
        for binding in scope.names.values():
            self._warn_unread(binding)

    def _warn_unread(self, binding: Binding) -> None:
        if binding.kind in ("let", "as") and not binding.read and binding.span not in self.ctx.read_too_early:
            self.ctx.warn("W519", binding.span, f"variable '{binding.name}' is never read")

    def bind(self, ident: ast.Ident, scope: Scope, kind: str) -> None:
        name = ident.name
        what = "loop variable" if kind == "loop" else "variable"
        if name in PREDEFINED:
            self.ctx.error("E215", ident.span, f"'{name}' is predefined and cannot be bound",
                           "choose another name")
            return
        self.ctx.check_name(ident, what)
        if kind == "let" and name in self.ctx.stores:
            self.ctx.warn("W507", ident.span, f"'let {name}' shadows the store '{name}'",
                          notes=(("store declared here", self.ctx.stores[name].name.span),))
        old = scope.names.get(name)
        if old is not None:
            self._warn_unread(old)
        scope.names[name] = Binding(name, ident.span, kind)

    # ------------------------------------------------------------ fetch and call
    def _fetch(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Fetch)
        path = step.path
        if isinstance(path, ast.Literal) and path.kind == "string":
            self._placeholders(path, scope)
        elif isinstance(path, ast.Var) and path.name in self.ctx.sources and not self.expr.resolve(
                path.name, path.span, scope, False):
            self.ctx.error("E210", path.span, f"'{path.name}' is a source, not a path",
                           f"name the source before a string path: {step.method} {path.name} \"/…\"")
        else:
            self.expr.check(path, scope, False)
        entries = self._request_options(step, scope, step.method)
        named = entries.get("source")
        if step.source is not None:
            if named is not None:
                self.ctx.error("E302", named.key_span, "the source is given twice",
                               f"the fetch already names it before the path: {step.source.name}",
                               notes=(("named here", step.source.span),))
            named = ast.Entry(key="source", key_span=step.source.span, span=step.source.span,
                              value=ast.Var(name=step.source.name, span=step.source.span))
        source = self._fetch_source(step, named)
        headers = entries.get("headers")
        if source is not None and headers is not None:
            self._authorization_header(source, headers.value)

    def _fetch_source(self, step: ast.Fetch, entry: ast.Entry | None) -> ast.Source | None:
        ctx = self.ctx
        if entry is None:
            if ctx.default_source is None:
                ctx.error("E207", step_head(step), "this fetch has no source: the mission declares none",
                          "declare one with 'source Name { auth: …, base: … }'")
                return None
            if len(ctx.sources) > 1:
                ctx.warn("W510", step_head(step), "fetch without 'source' in a mission with several sources",
                         f"it uses the first one, '{ctx.default_source.name.name}'; name it with 'source:'")
            ctx.used_sources.add(ctx.default_source.name.name)
            return ctx.default_source
        value = entry.value
        if isinstance(value, ast.Var):
            name = value.name
        elif isinstance(value, ast.Literal) and value.kind == "string":
            name = str(value.value)
        else:
            ctx.error("E318", value.span, f"'source' must be a source name, got {opt.describe(value)}")
            return None
        source = ctx.sources.get(name)
        if source is None:
            ctx.error("E207", value.span, f"unknown source '{name}'", *suggest(name, ctx.sources))
            return None
        ctx.used_sources.add(name)
        return source

    def _authorization_header(self, source: ast.Source, headers: ast.Expr) -> None:
        """W514 (§3.1.1): the auth header wins over an explicit Authorization header."""
        kind = _auth_kind(source)
        if kind in (None, "none") or not isinstance(headers, ast.ObjectLit):
            return
        for entry in headers.entries:
            if isinstance(entry, ast.Entry) and entry.key.lower() == "authorization":
                self.ctx.warn("W514", entry.key_span,
                              f"explicit Authorization header on source '{source.name.name}' (auth: {kind})",
                              "the authentication header replaces it")

    def _call(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.CallStep)
        ctx = self.ctx
        name = step.source.name
        source = ctx.sources.get(name)
        if source is None:
            ctx.error("E207", step.source.span, f"unknown source '{name}'", *suggest(name, ctx.sources))
        else:
            ctx.used_sources.add(name)
            self._operation(source, step, scope)
        entries = self._request_options(step, scope, None)
        if "source" in entries:
            ctx.error("E405", entries["source"].key_span, "'source' is not allowed on a call step",
                      f"the call already names its source: {name}")

    def _operation(self, source: ast.Source, step: ast.CallStep, scope: Scope) -> None:
        """E213: the source must have a document that defines the operation; then W522, W523."""
        operation = step.operation
        if source.document is None:
            self.ctx.error("E213", operation.span, f"source '{source.name.name}' has no OpenAPI document",
                           f"declare it with: source {source.name.name} from \"openapi.yaml\" {{ … }}")
            return
        document = self.ctx.documents.get(source.name.name)
        if document is None:  # a URL document, or one that did not load (reported at the source)
            return
        found = document.operation(operation.name)
        if found is None:
            self.ctx.error("E213", operation.span, f"unknown operation '{operation.name}' in {source.document}",
                           *suggest(operation.name, document.operations))
            return
        self._path_parameters(step, found.path_parameters, scope)
        self._security(source, step, found.security, document.schemes)

    def _path_parameters(self, step: ast.CallStep, names: tuple[str, ...], scope: Scope) -> None:
        """W522: a path placeholder neither in a literal `params` nor a variable in scope (§4.2)."""
        params = next((e.value for e in (step.options.entries if step.options else ())
                       if isinstance(e, ast.Entry) and e.key == "params"), None)
        # Computed params or a spread may supply any name: nothing to say then.
        known = params is None or (isinstance(params, ast.ObjectLit)
                                   and all(isinstance(e, ast.Entry) for e in params.entries))
        given = {e.key for e in params.entries if isinstance(e, ast.Entry)} if isinstance(params, ast.ObjectLit) else set()
        for name in names:
            if name in given:
                continue
            binding = scope.lookup(name)
            if binding is not None:
                binding.read = True  # the call may read it (§4.2)
            elif known:
                self.ctx.warn("W522", step.operation.span,
                              f"path parameter '{name}' of {step.operation.name} is neither in 'params' nor a "
                              "variable in scope", f"give it: params: {{ {name}: … }}")

    def _security(self, source: ast.Source, step: ast.CallStep, security: tuple[tuple[str, ...], ...] | None,
                  schemes: dict[str, str]) -> None:
        """W523: the documented security requirement names a scheme the source's auth does not provide."""
        if not security:  # undocumented, or documented as open (`security: []` / `{}`)
            return
        kind = _auth_kind(source) or "none"
        alternatives = [req for req in security if all(name in schemes for name in req)]
        if not alternatives or any(not req for req in alternatives):
            return
        if any(all(schemes[name] == kind or (kind == "bearer" and schemes[name] == "oauth2") for name in req)
               for req in alternatives):
            return
        wanted = " or ".join(" + ".join(f"{name} ({schemes[name]})" for name in req) for req in alternatives)
        self.ctx.warn("W523", step.operation.span,
                      f"{step.operation.name} is documented to need {wanted}, but source '{source.name.name}' "
                      f"has auth: {kind}")

    def _request_options(self, step: ast.Fetch | ast.CallStep, scope: Scope,
                         method: str | None) -> dict[str, ast.Entry]:
        """The option block of §4.1.1, shared by fetch and call."""
        if step.options is None:
            return {}
        ctx = self.ctx
        entries = opt.keyed_entries(ctx, step.options.entries, REQUEST_OPTIONS, "option")
        paginated = "paginate" in entries
        for key, entry in entries.items():
            if key != "since":
                opt.no_settings(ctx, entry)
            value = entry.value
            if key in PAGINATION_ONLY and not paginated:
                ctx.error("E303", entry.key_span, f"'{key}' needs 'paginate'",
                          "add paginate: offset(…), page(…) or cursor(…)")
            if key in ("params", "headers"):
                opt.not_a_list_or_scalar(ctx, value, key)
                self.expr.check(value, scope, False)
            elif key == "body":
                if method in ("get", "delete"):
                    ctx.warn("W511", entry.key_span, f"'body' on a {method.upper()} request",
                             "most servers ignore the body of GET and DELETE")
                self.expr.check(value, scope, False)
            elif key == "paginate":
                self._paginate(value)
            elif key == "until":
                self.expr.check(value, scope, True)
            elif key == "items":
                opt.string(ctx, value, key)
            elif key == "maxPages":
                opt.integer(ctx, value, key)
            elif key == "since":
                self._since(entry, scope)
            elif key == "retry":
                opt.retry_option(ctx, entry)
            elif key == "timeout":
                opt.duration(ctx, value, key, positive=True)
            elif key == "allow":
                self._allow(value)
        return entries

    def _paginate(self, value: ast.Expr) -> None:
        """§4.1.3: static `offset(param, size)`, `page(param, size)`, `cursor(param, size[, "path"])`."""
        ctx = self.ctx
        if not (isinstance(value, ast.FuncCall) and value.func.name in PAGINATION_KINDS):
            ctx.error("E316", value.span, "'paginate' must be offset(param, size), page(param, size) "
                      "or cursor(param, size, \"path\")", *_close_kind(value))
            return
        kind, args = value.func.name, value.args
        if not (len(args) == 2 or (kind == "cursor" and len(args) == 3)):
            shape = "cursor(param, size, \"path\")" if kind == "cursor" else f"{kind}(param, size)"
            ctx.error("E316", value.span, f"{kind}() takes {'2 or 3' if kind == 'cursor' else 2} arguments, "
                      f"got {len(args)}", f"write {shape}")
            return
        param = args[0]
        if not (isinstance(param, ast.Var) or (isinstance(param, ast.Literal) and param.kind == "string")):
            ctx.error("E316", param.span, "the pagination parameter must be a bare word or a string",
                      f"e.g. {kind}({kind}, {opt.describe(args[1])})")
        opt.integer(ctx, args[1], "page size")
        if len(args) == 3:
            path = args[2]
            if not (isinstance(path, ast.Literal) and path.kind == "string"):
                ctx.error("E316", path.span, "the cursor path must be a string literal such as \"next\"")
        elif kind == "cursor":
            ctx.warn("W516", value.span, "cursor pagination without a cursor path fetches one page",
                     "add the path of the next cursor: cursor(param, size, \"next\")")

    def _since(self, entry: ast.Entry, scope: Scope) -> None:
        """§4.1.4: `lastSync` forms are static; anything else is an expression."""
        ctx, value = self.ctx, entry.value
        if isinstance(value, ast.FuncCall) and value.func.name == "lastSync":
            if not (len(value.args) == 1 and isinstance(value.args[0], ast.Literal)
                    and value.args[0].kind == "string"):
                ctx.error("E318", value.span, "lastSync takes one string literal: the checkpoint name",
                          "e.g. lastSync(\"tickets\")")
        elif not (isinstance(value, ast.Var) and value.name == "lastSync"):
            opt.no_settings(ctx, entry)
            self.expr.check(value, scope, False)
            return
        if entry.settings is None:
            return
        fields = opt.settings_object(ctx, entry.settings, SINCE_SETTINGS, "lastSync setting", "lastSync")
        for key, field in (fields or {}).items():
            if key == "format":
                opt.word(ctx, field.value, key, SINCE_FORMATS)
            else:
                opt.string(ctx, field.value, key)

    def _allow(self, value: ast.Expr) -> None:
        """§4.1.6: a list of statuses 100–599 and "4xx"/"5xx" (E309)."""
        if not isinstance(value, ast.ListLit):
            self.ctx.error("E318", value.span, f"'allow' must be a list of statuses, got {opt.describe(value)}",
                           "e.g. allow: [404, \"5xx\"]")
            return
        for item in value.items:
            if isinstance(item, ast.Literal) and (
                    (item.kind == "int" and 100 <= int(item.value) <= 599)  # type: ignore[call-overload]
                    or (item.kind == "string" and item.value in ("4xx", "5xx"))):
                continue
            shown = "a spread" if isinstance(item, ast.Spread) else opt.describe(item)
            self.ctx.error("E309", item.span, f"bad 'allow' entry {shown}",
                           "entries are statuses 100-599 or the strings \"4xx\" and \"5xx\"")

    def _placeholders(self, path: ast.Literal, scope: Scope) -> None:
        """§4.1.2: `{name.field…}` placeholders of a literal path (E311)."""
        text = str(path.value)
        start = text.find("{")
        while start != -1:
            found = _PLACEHOLDER.match(text, start)
            if found is None:
                self.ctx.error("E311", _inside(path, start, 1), "malformed path placeholder",
                               "write {name} or {name.field}; a literal brace cannot appear in a path")
                start = text.find("{", start + 1)
                continue
            name = found.group(1)
            span = _inside(path, start + 1, len(name))
            if not self.expr.resolve(name, span, scope, False):
                self.expr.unknown_name(name, span, scope, "E311", f"unknown name '{name}' in path placeholder")
            start = text.find("{", found.end())

    # ------------------------------------------------------------ data steps
    def _for(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.For)
        self.expr.check(step.collection, scope, False)
        if step.parallel:
            self.has_parallel_loop = True
        body = Scope(scope)
        self.bind(step.var, body, "loop")
        if step.where is not None:
            self.expr.check(step.where, body, True)
        self.block(step.body, body, arm=False, in_match=in_match, parallel_body=step.parallel)

    def _map(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.MapStep)
        self.expr.check(step.source, scope, False)
        for entry in step.fields.entries:
            self.expr.check(entry.value, scope, True)
        schema = self.ctx.schemas.get(step.target.name)
        if schema is not None:
            self.ctx.used_schemas.add(schema.name.name)
            self._fit_schema(step, schema)
        if step.as_name is not None:
            self.bind(step.as_name, scope, "as")

    def _fit_schema(self, step: ast.MapStep, schema: ast.Schema) -> None:
        """W518 (§4.4): mapped fields against the fields of the target schema."""
        declared = {f.name: f for f in schema.fields}
        mapped: set[str] = set()
        spread = False
        for entry in step.fields.entries:
            if isinstance(entry, ast.Spread):
                spread = True
                continue
            mapped.add(entry.key)
            if entry.key not in declared:
                self.ctx.warn("W518", entry.key_span, f"field '{entry.key}' is not in schema '{schema.name.name}'",
                              *suggest(entry.key, declared), notes=(("schema declared here", schema.name.span),))
        missing = [name for name, f in declared.items() if not f.optional and name not in mapped]
        if missing and not spread:
            listed = ", ".join(f"'{m}'" for m in missing)
            self.ctx.warn("W518", step.target.span,
                          f"map to '{schema.name.name}' does not set its required field{'s' if len(missing) > 1 else ''} "
                          f"{listed}", notes=(("schema declared here", schema.name.span),))

    def _apply(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Apply)
        name = step.transform.name
        if name in self.ctx.transforms:
            self.ctx.used_transforms.add(name)
        else:
            self.ctx.error("E209", step.transform.span, f"unknown transform '{name}'",
                           *suggest(name, self.ctx.transforms))
        self.expr.check(step.source, scope, False)
        if step.as_name is not None:
            self.bind(step.as_name, scope, "as")

    def _validate(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Validate)
        if step.target is not None:
            self.expr.check(step.target, scope, False)
        for constraint in step.constraints:
            self.expr.check(constraint.condition, scope, step.target is not None)

    def _store(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.StoreStep)
        self.expr.check(step.value, scope, False)
        self._write(step.store)
        if step.options is None:
            return
        for key, entry in opt.keyed_entries(self.ctx, step.options.entries, STORE_OPTIONS, "store option").items():
            opt.no_settings(self.ctx, entry)
            if key == "key":
                self.expr.check(entry.value, scope, True)
            else:
                opt.boolean(self.ctx, entry.value, key)

    def _write(self, ident: ast.Ident) -> None:
        name = ident.name
        if name not in self.ctx.stores:
            self.ctx.error("E206", ident.span, f"unknown store '{name}'", *suggest(name, self.ctx.stores),
                           f"declare it in the mission: store {name}: memory(\"{name}\")")
            return
        self.ctx.used_stores.add(name)
        self.summary.store_writes.setdefault(name, ident.span)

    def _let(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Let)
        self.expr.check(step.value, scope, False)
        self.bind(step.name, scope, "let")

    def _match(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        """§4.9: each arm body is a block scope holding the pattern's bindings. Without a
        subject there is nothing for `queue` to dead-letter, so `in_match` stays as it was."""
        assert isinstance(step, ast.MatchStep)
        has_subject = step.subject is not None
        if step.subject is not None:
            self.expr.check(step.subject, scope, False)
        catch_all = check_arms(self.ctx, step.arms, has_subject)
        for branch in step.arms:
            body = Scope(scope)
            if branch.pattern is not None:
                bind_pattern(self.ctx, branch.pattern, body)
            if branch.condition is not None:
                self.expr.check(branch.condition, scope, False)
            if branch.guard is not None:
                self.expr.check(branch.guard, body, has_subject)
            self.block(branch.body, body, arm=True, in_match=in_match or has_subject)
        if not catch_all:
            if has_subject:
                self.ctx.warn("W504", step_head(step), "match without a '_' arm",
                              "a value that no arm matches fails the step with kind no-match")
            else:
                self.ctx.warn("W504", step_head(step), "match without a final '_' or 'true' arm",
                              "when no condition holds the step fails with kind no-match")

    def _wait(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Wait)
        ctx = self.ctx
        entries = opt.keyed_entries(ctx, step.options.entries, WAIT_OPTIONS, "wait option")
        if "path" not in entries:
            ctx.error("E317", step_head(step), "'wait' needs a 'path'", "e.g. wait { path: \"/hooks/done\" }")
        for key, entry in entries.items():
            if key == "retry":
                opt.retry_option(ctx, entry)
                continue
            opt.no_settings(ctx, entry)
            if key == "path":
                self.expr.check(entry.value, scope, False)
            elif key == "timeout":
                opt.duration(ctx, entry.value, key, positive=True)
            elif key == "expectedEvents":
                opt.integer(ctx, entry.value, key)
            elif key == "eventFilter":
                self.expr.check(entry.value, scope, True)
            elif key == "storage":
                self._storage(entry.value, scope)

    def _storage(self, value: ast.Expr, scope: Scope) -> None:
        fields = opt.settings_object(self.ctx, value, STORAGE_FIELDS, "storage field", "storage")
        if fields is None:
            return
        target = fields.get("target")
        if target is None:
            self.ctx.error("E318", value.span, "'storage' needs 'target: storeName'")
        elif isinstance(target.value, ast.Var):
            self._write(ast.Ident(name=target.value.name, span=target.value.span))
        else:
            self.ctx.error("E318", target.value.span,
                           f"'target' must be a store name, got {opt.describe(target.value)}")
        if "key" in fields:
            self.expr.check(fields["key"].value, scope, True)

    # ------------------------------------------------------------ flow directives
    def _skip(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        return None

    def _continue(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        if not arm:
            in_loop = len(self.frames) > 1  # not directly in an arm body: the action body or a loop
            hint = ("inside a loop, 'skip' ends the iteration" if in_loop
                    else "'continue' resumes after the match whose arm contains it")
            self.ctx.error("E401", step_head(step), "'continue' outside a match-arm body", hint)

    def _abort(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Abort)
        if step.message is not None:
            self.expr.check(step.message, scope, False)

    def _retry(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Retry)
        if step.options is not None:
            fields = opt.keyed_entries(self.ctx, step.options.entries, opt.RETRY_FIELDS, "retry field")
            delay = opt.retry_fields(self.ctx, fields, directive=True)
            if delay is not None:
                self.expr.check(delay, scope, False)
        self._anchor(step_head(step), "retry")

    def _anchor(self, span: ast.Span, what: str) -> None:
        """E402 without an earlier fetch; E406 when a parallel loop body lies between (§4.10.4, §7.6)."""
        crossed = False
        for frame in reversed(self.frames):
            if frame.anchored:
                if crossed:
                    self.ctx.error("E406", span, f"'{what}' in a parallel loop body replays a fetch outside it",
                                   "fetch inside the loop body before retrying")
                return
            crossed = crossed or frame.parallel_body
        self.ctx.error("E402", span, f"'{what}' has no fetch before it to replay",
                       "retry replays the most recent get/post/…/call of this block or an enclosing one")

    def _queue(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Queue)
        self._write(step.store)
        entries = {}
        if step.options is not None:
            entries = opt.keyed_entries(self.ctx, step.options.entries, QUEUE_OPTIONS, "queue option")
            for key, entry in entries.items():
                opt.no_settings(self.ctx, entry)
                self.expr.check(entry.value, scope, key == "key")
        if not in_match and "item" not in entries:
            self.ctx.error("E403", step_head(step), "'queue' outside a match arm needs an 'item'",
                           f"e.g. queue {step.store.name} {{ item: response }}")

    def _jump(self, step: ast.Step, scope: Scope, arm: bool, in_match: bool) -> None:
        assert isinstance(step, ast.Jump)
        name = step.action.name
        if name in self.ctx.actions:
            self.ctx.jump_targets.add(name)
            self.summary.jumps.append(step.action)
        else:
            self.ctx.error("E212", step.action.span, f"jump to unknown action '{name}'",
                           *suggest(name, self.ctx.actions))
        if step.then == "retry":
            self._anchor(step_head(step), "jump … then retry")


def _later_bindings(steps: tuple[ast.Step, ...]) -> dict[str, ast.Span]:
    """Names a block binds with `let` or `as`, at their first binding (for E217)."""
    found: dict[str, ast.Span] = {}
    for step in steps:
        if isinstance(step, ast.Let):
            found.setdefault(step.name.name, step.name.span)
        elif isinstance(step, (ast.MapStep, ast.Apply)) and step.as_name is not None:
            found.setdefault(step.as_name.name, step.as_name.span)
    return found


def _auth_kind(source: ast.Source) -> str | None:
    for entry in source.options.entries:
        if entry.key == "auth" and isinstance(entry.value, ast.Var):
            return entry.value.name
    return None


def _close_kind(value: ast.Expr) -> tuple[str, ...]:
    if isinstance(value, ast.FuncCall):
        return suggest(value.func.name, PAGINATION_KINDS)
    return ()


def _inside(literal: ast.Literal, offset: int, length: int) -> ast.Span:
    """A span inside a one-line string literal without escapes; the whole literal otherwise."""
    s = literal.span
    if s.line != s.end_line or s.end_column - s.column != len(str(literal.value)) + 2:
        return s
    column = s.column + 1 + offset
    return ast.Span(s.file, s.line, column, s.line, column + length, s.start + 1 + offset,
                    s.start + 1 + offset + length)
