"""Text to AST: the LALR tables of the grammar, driven by `reqon.lalr_driver`, with Lark behind.

Valid input is parsed by the fast driver from cached tables (`reqon.lalr_tables`) and
never imports Lark. Input the driver rejects is parsed again by Lark itself, built on
first need, whose errors are translated from Lark's terms into plain words by
`reqon.syntax_errors`; several are collected in one pass where the parser can recover.
"""
from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from reqon import ast, lalr_tables
from reqon.diagnostics import Diagnostic, ReqonSyntaxError, error
from reqon.grammar import METHOD_ALIASES, grammar_text
from reqon.heap import no_collection
from reqon.lalr_driver import FastParser
from reqon.patterns import to_pattern

if TYPE_CHECKING:
    import lark
    from lark import Token

    from reqon.syntax_errors import SyntaxErrorTranslator

Key = tuple[str, ast.Span]


def _lark_cache_path() -> str | bool:
    """Where Lark keeps its own analysed tables for the error path (it checks their hash itself)."""
    base = lalr_tables.cache_dir()
    try:
        base.mkdir(parents=True, exist_ok=True)
        probe = base / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError:
        return True  # Lark falls back to the temp directory
    return str(base / f"lark-{lalr_tables.cache_key(grammar_text())[:32]}.cache")


_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "n": "\n", "r": "\r", "t": "\t",
            "b": "\b", "f": "\f"}


class _Builder:
    """Builds AST nodes bottom-up, one method per rule taking (position, children);
    `file` and `diagnostics` are reset per parse."""

    def __init__(self) -> None:
        self.file = "<input>"
        self.diagnostics: list[Diagnostic] = []

    def transform(self, tree: Any) -> Any:
        """The AST of a Lark parse tree (the error path's parser builds trees)."""
        from lark import Transformer

        builder = self

        class TreeToAst(Transformer):  # type: ignore[type-arg]
            def __default__(self, data: Any, children: list[Any], meta: Any) -> Any:
                return getattr(builder, data)(meta, children)

        return TreeToAst(visit_tokens=False).transform(tree)

    # ------------------------------------------------------------ helpers
    def _span(self, meta: Any) -> ast.Span:
        """From Lark's Meta, or from the (start, line, column, end, end_line, end_column)
        tuple the fast driver passes instead."""
        if meta.__class__ is tuple:
            return ast.Span(self.file, meta[1], meta[2], meta[4], meta[5], meta[0], meta[3])
        if meta is None or getattr(meta, "empty", True):
            return ast.Span(self.file, 1, 1, 1, 1)
        return ast.Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column,
                        meta.start_pos, meta.end_pos)

    def _tspan(self, tok: Token) -> ast.Span:
        return ast.Span(self.file, tok.line or 1, tok.column or 1, tok.end_line or 1,
                        tok.end_column or 1, tok.start_pos or 0, tok.end_pos or 0)

    def _ident(self, tok: Token) -> ast.Ident:
        return ast.Ident(name=str(tok), span=self._tspan(tok))

    def _string(self, tok: Token) -> str:
        """Decode a string literal; bad escapes become E103 diagnostics, not exceptions."""
        raw = str(tok)[1:-1]
        if "\\" not in raw:
            return raw
        out: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            decoded, used = self._escape(raw, i, tok)
            out.append(decoded)
            i += used
        return "".join(out)

    def _escape(self, raw: str, i: int, tok: Token) -> tuple[str, int]:
        nxt = raw[i + 1] if i + 1 < len(raw) else ""
        if nxt in _ESCAPES:
            return _ESCAPES[nxt], 2
        if nxt == "u":
            decoded = _unicode_escape(raw, i)
            if decoded is not None:
                return decoded
        col = (tok.column or 1) + 1 + i
        span = ast.Span(self.file, tok.line or 1, col, tok.line or 1, col + 2,
                        (tok.start_pos or 0) + 1 + i, (tok.start_pos or 0) + 3 + i)
        self.diagnostics.append(error("E103", span, f"unknown escape sequence '\\{nxt}' in string",
                                      "write '\\\\' for a backslash"))
        return nxt, 2

    def _key(self, child: Any) -> Key:
        tok = child
        if tok.type == "STRING":
            return self._string(tok), self._tspan(tok)
        return str(tok), self._tspan(tok)

    # ------------------------------------------------------------ file and declarations
    def start(self, meta: Any, children: list[Any]) -> ast.Program:
        return ast.Program(file=self.file, declarations=tuple(children), span=self._span(meta))

    def mission(self, meta: Any, children: list[Any]) -> ast.Mission:
        name, *members = children
        groups: dict[type, list[Any]] = {}
        for m in members:
            groups.setdefault(type(m), []).append(m)

        def of(kind: type) -> tuple[Any, ...]:
            return tuple(groups.get(kind, ()))
        scheduling = of(ast.ScheduleMember)
        schedules = tuple(dataclasses.replace(s, members=scheduling) for s in of(ast.Schedule))
        return ast.Mission(name=self._ident(name), sources=of(ast.Source), stores=of(ast.StoreDecl),
                           schemas=of(ast.Schema), transforms=of(ast.Transform),
                           actions=of(ast.Action), runs=of(ast.Run), schedules=schedules,
                           settings=of(ast.Setting), schedule_members=scheduling, span=self._span(meta))

    def setting(self, meta: Any, children: list[Any]) -> ast.Setting:
        tok, value = children
        return ast.Setting(key=str(tok), value=value, span=self._span(meta))

    def source(self, meta: Any, children: list[Any]) -> ast.Source:
        name, document, options = children
        doc = self._string(document) if document is not None else None
        return ast.Source(name=self._ident(name), document=doc, options=options, span=self._span(meta))

    def store_decl(self, meta: Any, children: list[Any]) -> ast.StoreDecl:
        name, kind, target = children
        return ast.StoreDecl(name=self._ident(name), kind=self._ident(kind), target=self._string(target),
                             target_span=self._tspan(target), span=self._span(meta))

    def schema(self, meta: Any, children: list[Any]) -> ast.Schema:
        name, *fields = children
        return ast.Schema(name=self._ident(name), fields=tuple(fields), span=self._span(meta))

    def schema_field(self, meta: Any, children: list[Any]) -> ast.SchemaField:
        (name, _), type_, optional = children
        return ast.SchemaField(name=name, type_expr=type_, optional=optional is not None, span=self._span(meta))

    def optional(self, meta: Any, children: list[Any]) -> bool:
        return True

    def type_name(self, meta: Any, children: list[Any]) -> ast.TypeName:
        return ast.TypeName(name=str(children[0]), span=self._span(meta))

    def generic_type(self, meta: Any, children: list[Any]) -> ast.TypeName:
        base, arg = children
        return ast.TypeName(name=base.name, arg=arg, span=self._span(meta))

    def inline_type(self, meta: Any, children: list[Any]) -> ast.InlineType:
        return ast.InlineType(fields=tuple(children), span=self._span(meta))

    def transform_typed(self, meta: Any, children: list[Any]) -> ast.Transform:
        name, source, target, fields = children
        variant = ast.Variant(source=self._ident(source), where=None, target=self._ident(target),
                              fields=fields, span=self._span(meta))
        return ast.Transform(name=self._ident(name), variants=(variant,), span=self._span(meta))

    def transform_any(self, meta: Any, children: list[Any]) -> ast.Transform:
        name, target, fields = children
        variant = ast.Variant(source=None, where=None, target=self._ident(target), fields=fields,
                              span=self._span(meta))
        return ast.Transform(name=self._ident(name), variants=(variant,), span=self._span(meta))

    def transform_variants(self, meta: Any, children: list[Any]) -> ast.Transform:
        name, *variants = children
        return ast.Transform(name=self._ident(name), variants=tuple(variants), span=self._span(meta))

    def variant(self, meta: Any, children: list[Any]) -> ast.Variant:
        source, where, target, fields = children
        src = None if str(source) == "_" else self._ident(source)
        return ast.Variant(source=src, where=where, target=self._ident(target), fields=fields,
                           span=self._span(meta))

    def action(self, meta: Any, children: list[Any]) -> ast.Action:
        name, *items = children
        settings: list[ast.ActionSetting] = []
        misplaced: list[ast.ActionSetting] = []
        steps: list[Any] = []
        for item in items:
            if isinstance(item, ast.ActionSetting):
                (misplaced if steps else settings).append(item)
            else:
                steps.append(item)
        return ast.Action(name=self._ident(name), settings=tuple(settings), misplaced=tuple(misplaced),
                          steps=tuple(steps), span=self._span(meta))

    def action_setting(self, meta: Any, children: list[Any]) -> ast.ActionSetting:
        return ast.ActionSetting(key="concurrency", value=children[0], span=self._span(meta))

    def run(self, meta: Any, children: list[Any]) -> ast.Run:
        return ast.Run(stages=tuple(children), span=self._span(meta))

    def stage(self, meta: Any, children: list[Any]) -> ast.Stage:
        (actions, parallel), options, condition = children
        return ast.Stage(actions=actions, parallel=parallel, options=options, condition=condition,
                         span=self._span(meta))

    def single_stage(self, meta: Any, children: list[Any]) -> tuple[tuple[ast.Ident, ...], bool]:
        return (self._ident(children[0]),), False

    def parallel_stage(self, meta: Any, children: list[Any]) -> tuple[tuple[ast.Ident, ...], bool]:
        return tuple(self._ident(c) for c in children), True

    def schedule(self, meta: Any, children: list[Any]) -> ast.Schedule:
        spec, options = children
        return ast.Schedule(**spec, options=options, span=self._span(meta))

    def schedule_member(self, meta: Any, children: list[Any]) -> ast.ScheduleMember:
        key, value = children
        return ast.ScheduleMember(key=key, value=value, span=self._span(meta))

    def sched_member(self, meta: Any, children: list[Any]) -> str:
        return str(children[0])

    def every_units(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        count, unit = children
        return {"kind": "every", "count": int(str(count)), "unit": self._ident(unit)}

    def every_duration(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return {"kind": "every", "duration_ms": _duration_ms(str(children[0]))}

    def cron(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return {"kind": "cron", "text": self._string(children[0]), "text_span": self._tspan(children[0])}

    def at(self, meta: Any, children: list[Any]) -> dict[str, Any]:
        return {"kind": "at", "text": self._string(children[0]), "text_span": self._tspan(children[0])}

    # ------------------------------------------------------------ key lists
    def options(self, meta: Any, children: list[Any]) -> ast.Options:
        return ast.Options(entries=tuple(c for c in children if c is not None), span=self._span(meta))

    def option(self, meta: Any, children: list[Any]) -> ast.Entry:
        (key, key_span), value, settings = children
        return ast.Entry(key=key, key_span=key_span, value=value, settings=settings, span=self._span(meta))

    def fields(self, meta: Any, children: list[Any]) -> ast.Fields:
        return ast.Fields(entries=tuple(c for c in children if c is not None), span=self._span(meta))

    def field(self, meta: Any, children: list[Any]) -> ast.Entry:
        (key, key_span), value = children
        return ast.Entry(key=key, key_span=key_span, value=value, span=self._span(meta))

    def spread(self, meta: Any, children: list[Any]) -> ast.Spread:
        return ast.Spread(value=children[0], span=self._span(meta))

    def key(self, meta: Any, children: list[Any]) -> Key:
        return self._key(children[0])

    plain_key = key

    def reserved_word(self, meta: Any, children: list[Any]) -> Token:
        return children[0]

    operator_word = contextual_word = reserved_word

    # ------------------------------------------------------------ steps
    def block(self, meta: Any, children: list[Any]) -> tuple[Any, ...]:
        return tuple(children)

    def fetch(self, meta: Any, children: list[Any]) -> ast.Fetch:
        method, path, options = children
        return ast.Fetch(method=method, path=path, options=options, span=self._span(meta))

    def fetch_from(self, meta: Any, children: list[Any]) -> ast.Fetch:
        """`get Xero "/x"`: the source named between the method and the path (§4.1)."""
        method, source, path, options = children
        return ast.Fetch(method=method, path=path, options=options, source=self._ident(source),
                         span=self._span(meta))

    def method(self, meta: Any, children: list[Any]) -> str:
        return str(children[0]).lower()

    def call(self, meta: Any, children: list[Any]) -> ast.CallStep:
        source, operation, options = children
        if operation.type == "STRING":  # an operationId that is not a word (§4.2)
            operation_id = ast.Ident(name=self._string(operation), span=self._tspan(operation))
        else:
            operation_id = self._ident(operation)
        return ast.CallStep(source=self._ident(source), operation=operation_id,
                            options=options, span=self._span(meta))

    def for_(self, meta: Any, children: list[Any]) -> ast.For:
        var, collection, where, parallel, body = children
        return ast.For(var=self._ident(var), collection=collection, where=where,
                       parallel=parallel is not None, body=body, span=self._span(meta))

    def map(self, meta: Any, children: list[Any]) -> ast.MapStep:
        source, target, fields, as_name = children
        return ast.MapStep(source=source, target=self._ident(target), fields=fields,
                           as_name=self._ident(as_name) if as_name is not None else None,
                           span=self._span(meta))

    def apply(self, meta: Any, children: list[Any]) -> ast.Apply:
        transform, source, as_name = children
        return ast.Apply(transform=self._ident(transform), source=source,
                         as_name=self._ident(as_name) if as_name is not None else None,
                         span=self._span(meta))

    def validate(self, meta: Any, children: list[Any]) -> ast.Validate:
        target, *constraints = children
        return ast.Validate(target=target, constraints=tuple(constraints), span=self._span(meta))

    def constraint(self, meta: Any, children: list[Any]) -> ast.Assume:
        condition, warn, message = children
        return ast.Assume(condition=condition, warn=warn is not None,
                          message=self._string(message) if message is not None else None,
                          span=self._span(meta))

    def store(self, meta: Any, children: list[Any]) -> ast.StoreStep:
        each, value, store, options = children
        return ast.StoreStep(each=each is not None, value=value, store=self._ident(store),
                             options=options, span=self._span(meta))

    def let(self, meta: Any, children: list[Any]) -> ast.Let:
        name, value = children
        return ast.Let(name=self._ident(name), value=value, span=self._span(meta))

    def match_step(self, meta: Any, children: list[Any]) -> ast.MatchStep:
        subject, *arms = children
        built = tuple(_arm(a, subject is not None) for a in arms if a is not None)
        return ast.MatchStep(subject=subject, arms=built, span=self._span(meta))

    def arm(self, meta: Any, children: list[Any]) -> ast.Arm:
        """Pattern or condition is decided by `match_step`, which knows whether there is a subject."""
        head, guard, body = children
        is_block = isinstance(body, tuple)
        return ast.Arm(pattern=None, condition=head, guard=guard, body=body if is_block else (body,),
                       is_block=is_block, span=self._span(meta))

    def wait(self, meta: Any, children: list[Any]) -> ast.Wait:
        return ast.Wait(options=children[0], span=self._span(meta))

    def skip(self, meta: Any, children: list[Any]) -> ast.Skip:
        return ast.Skip(span=self._span(meta))

    def continue_(self, meta: Any, children: list[Any]) -> ast.Continue:
        return ast.Continue(span=self._span(meta))

    def abort(self, meta: Any, children: list[Any]) -> ast.Abort:
        return ast.Abort(message=children[0], span=self._span(meta))

    def retry(self, meta: Any, children: list[Any]) -> ast.Retry:
        return ast.Retry(options=children[0], span=self._span(meta))

    def queue(self, meta: Any, children: list[Any]) -> ast.Queue:
        store, options = children
        return ast.Queue(store=self._ident(store), options=options, span=self._span(meta))

    def jump(self, meta: Any, children: list[Any]) -> ast.Jump:
        action, then = children
        return ast.Jump(action=self._ident(action), then=then, span=self._span(meta))

    def jump_then(self, meta: Any, children: list[Any]) -> str:
        return str(children[0])

    # ------------------------------------------------------------ expressions
    def any_of(self, meta: Any, children: list[Any]) -> ast.AnyOf:
        collection, condition = children
        return ast.AnyOf(collection=collection, condition=condition, span=self._span(meta))

    def ternary(self, meta: Any, children: list[Any]) -> ast.Ternary:
        condition, then, otherwise = children
        return ast.Ternary(condition=condition, then=then, otherwise=otherwise, span=self._span(meta))

    def _binary(self, op: str, meta: Any, children: list[Any]) -> ast.Binary:
        left, right = children
        return ast.Binary(op=op, left=left, right=right, span=self._span(meta))

    def coalesce(self, meta: Any, children: list[Any]) -> ast.Binary:
        return self._binary("??", meta, children)

    def or_(self, meta: Any, children: list[Any]) -> ast.Binary:
        return self._binary("or", meta, children)

    def and_(self, meta: Any, children: list[Any]) -> ast.Binary:
        return self._binary("and", meta, children)

    def contains(self, meta: Any, children: list[Any]) -> ast.Binary:
        return self._binary("contains", meta, children)

    def not_(self, meta: Any, children: list[Any]) -> ast.Not:
        return ast.Not(operand=children[0], span=self._span(meta))

    def compare(self, meta: Any, children: list[Any]) -> ast.Binary:
        left, op, right = children
        return self._binary(str(op), meta, [left, right])

    binary = compare

    def is_type(self, meta: Any, children: list[Any]) -> ast.IsType:
        operand, negated, type_name = children
        ident = ast.Ident(name=type_name.name, span=type_name.span)
        return ast.IsType(operand=operand, type_name=ident, negated=negated is not None,
                          span=self._span(meta))

    def unary(self, meta: Any, children: list[Any]) -> ast.Unary:
        op, operand = children
        return ast.Unary(op=str(op), operand=operand, span=self._span(meta))

    def member(self, meta: Any, children: list[Any]) -> ast.Member:
        obj, word = children
        return ast.Member(obj=obj, name=str(word), span=self._span(meta))

    def method_call(self, meta: Any, children: list[Any]) -> ast.FuncCall:
        """`x.f(args)` is `f(x, args)`; `.map(…)` is `mapEach` (§5.8)."""
        obj, word, *args = children
        func = ast.Ident(name=METHOD_ALIASES.get(str(word), str(word)), span=self._tspan(word))
        return ast.FuncCall(func=func, args=(obj, *(a for a in args if a is not None)), span=self._span(meta))

    def index(self, meta: Any, children: list[Any]) -> ast.Index:
        obj, idx = children
        return ast.Index(obj=obj, index=idx, span=self._span(meta))

    def var(self, meta: Any, children: list[Any]) -> ast.Var:
        return ast.Var(name=str(children[0]), span=self._span(meta))

    def call_expr(self, meta: Any, children: list[Any]) -> ast.FuncCall:
        func, *args = children
        return ast.FuncCall(func=self._ident(func), args=tuple(a for a in args if a is not None),
                            span=self._span(meta))

    def subject_field(self, meta: Any, children: list[Any]) -> ast.SubjectField:
        return ast.SubjectField(name=str(children[0]), span=self._span(meta))

    def list_lit(self, meta: Any, children: list[Any]) -> ast.ListLit:
        return ast.ListLit(items=tuple(c for c in children if c is not None), span=self._span(meta))

    def object(self, meta: Any, children: list[Any]) -> ast.ObjectLit:
        return ast.ObjectLit(entries=tuple(c for c in children if c is not None), span=self._span(meta))

    def match_expr(self, meta: Any, children: list[Any]) -> ast.MatchExpr:
        subject, *arms = children
        built = tuple(_arm(a, subject is not None) for a in arms if a is not None)
        return ast.MatchExpr(subject=subject, arms=built, span=self._span(meta))

    def expr_arm(self, meta: Any, children: list[Any]) -> ast.ExprArm:
        head, guard, result = children
        return ast.ExprArm(pattern=None, condition=head, guard=guard, result=result, span=self._span(meta))

    def _literal(self, meta: Any, value: Any, kind: str) -> ast.Literal:
        return ast.Literal(value=value, kind=kind, span=self._span(meta))

    def literal_string(self, meta: Any, children: list[Any]) -> ast.Literal:
        return self._literal(meta, self._string(children[0]), "string")

    def literal_int(self, meta: Any, children: list[Any]) -> ast.Literal:
        return self._literal(meta, int(str(children[0])), "int")

    def literal_decimal(self, meta: Any, children: list[Any]) -> ast.Literal:
        return self._literal(meta, float(str(children[0])), "decimal")

    def literal_duration(self, meta: Any, children: list[Any]) -> ast.Literal:
        return self._literal(meta, _duration_ms(str(children[0])), "duration")

    def literal_true(self, meta: Any, children: list[Any]) -> ast.Literal:
        return self._literal(meta, True, "bool")

    def literal_false(self, meta: Any, children: list[Any]) -> ast.Literal:
        return self._literal(meta, False, "bool")

    def literal_null(self, meta: Any, children: list[Any]) -> ast.Literal:
        return self._literal(meta, None, "null")


def _arm(arm: Any, has_subject: bool) -> Any:
    """With a subject the arm's head is a pattern (§4.9.1); without one, a condition or `_`."""
    head = arm.condition
    if has_subject:
        return dataclasses.replace(arm, pattern=to_pattern(head), condition=None)
    if isinstance(head, ast.Var) and head.name == "_":
        return dataclasses.replace(arm, condition=None)
    return arm


# `for` is a Python keyword: Lark looks the rule up by name.
setattr(_Builder, "for", _Builder.for_)

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration_ms(text: str) -> int:
    digits = text.rstrip("msdh")
    unit = text[len(digits):]
    return int(digits) * _UNITS[unit]


def _unicode_escape(raw: str, i: int) -> tuple[str, int] | None:
    if raw.startswith("{", i + 2):
        end = raw.find("}", i + 3)
        digits = raw[i + 3:end] if end != -1 else ""
        if 1 <= len(digits) <= 6 and _is_hex(digits) and int(digits, 16) <= 0x10FFFF:
            return chr(int(digits, 16)), end - i + 1
        return None
    digits = raw[i + 2:i + 6]
    if len(digits) == 4 and _is_hex(digits):
        return chr(int(digits, 16)), 6
    return None


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


class _NamesEverywhere:
    """A no-op post-lexer whose only job is to make NAME acceptable in every lexer state.

    With it, the contextual lexer matches whole words first and only then asks
    whether the word is a keyword the current state accepts; without it a
    state that accepts `run` but no NAME would split `runn` into `run` + `n`.
    """

    always_accept = ("NAME",)

    def process(self, stream: Any) -> Any:
        return stream


class Parser:
    """One Lark parser per process; `parse` is serialised because the builder is stateful."""

    def __init__(self) -> None:
        self._builder = _Builder()
        self._lark_parser: lark.Lark | None = None
        self._translator: SyntaxErrorTranslator | None = None
        self._fast = FastParser(lalr_tables.load(grammar_text(), self._build_lark), self._builder)
        self._lock = threading.Lock()

    def _build_lark(self) -> lark.Lark:
        if self._lark_parser is None:
            import lark

            self._lark_parser = lark.Lark(grammar_text(), parser="lalr", lexer="contextual",
                                          propagate_positions=True, postlex=_NamesEverywhere(),
                                          cache=_lark_cache_path())
        return self._lark_parser

    @property
    def _errors(self) -> SyntaxErrorTranslator:
        """Lark with error recovery, built when a file first has a syntax error (valid
        files import neither Lark nor the error translation)."""
        if self._translator is None:
            from reqon.syntax_errors import SyntaxErrorTranslator

            self._translator = SyntaxErrorTranslator(self._build_lark())
        return self._translator

    def _transform(self, tree: Any, file: str) -> ast.Program | None:
        try:
            return self._builder.transform(tree)
        except RecursionError:
            self._builder.diagnostics.append(error("E101", ast.Span(file, 1, 1, 1, 1),
                                                   "the file is nested too deeply to parse"))
            return None

    def parse(self, text: str, file: str) -> tuple[ast.Program | None, list[Diagnostic]]:
        with self._lock, no_collection():  # an acyclic tree (reqon/heap.py)
            self._builder.file = file
            self._builder.diagnostics = []
            program = self._fast.parse(text)
            found: list[Diagnostic] = []
            if program is None:  # the fast path takes valid input only; Lark explains the rest
                from reqon.syntax_errors import nesting_problem

                deep = nesting_problem(text, file)
                if deep is not None:
                    return None, [deep]
                self._builder.diagnostics = []
                tree, found = self._errors.parse(text, file)
                program = self._transform(tree, file) if tree is not None and not found else None
            found = found + self._builder.diagnostics
        if found:
            found.sort(key=lambda d: (d.span.line, d.span.column))
            return None, found
        return program, []


_PARSER: Parser | None = None


def get_parser() -> Parser:
    global _PARSER
    if _PARSER is None:
        _PARSER = Parser()
    return _PARSER


def parse_text(text: str, file: str = "<input>") -> tuple[ast.Program | None, list[Diagnostic]]:
    """Parse one file's text; returns the program or every syntax diagnostic found."""
    return get_parser().parse(text, file)


def parse(source: str, path: str | None = None) -> ast.Program:
    """Library API: parse source text, raising ReqonSyntaxError with all diagnostics."""
    program, diagnostics = parse_text(source, path or "<input>")
    if program is None:
        raise ReqonSyntaxError(diagnostics)
    return program
