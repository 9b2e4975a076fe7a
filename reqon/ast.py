"""The typed syntax tree of a Reqon program.

Nodes are small frozen dataclasses without behaviour: the checker and the
evaluator walk them with `match`. Every node carries a `span` so that any later
stage can point at the source text it came from.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Union


class Span(NamedTuple):
    """A source range; lines and columns are 1-based, columns count code points.

    A named tuple rather than a dataclass: one is made for every node and token of a
    file, and a tuple is built several times faster, which the parser's speed shows.
    """

    file: str
    line: int
    column: int
    end_line: int
    end_column: int
    start: int = 0
    end: int = 0


NO_SPAN = Span("<none>", 1, 1, 1, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ident(Node):
    """A name written in the source (declaration names and references)."""

    name: str


# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal(Node):
    """`kind` is string, int, decimal, duration, bool or null; durations hold milliseconds."""

    value: object
    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Var(Node):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubjectField(Node):
    """`.name`: a field of the implicit subject."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Member(Node):
    obj: Expr
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Index(Node):
    obj: Expr
    index: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class FuncCall(Node):
    func: Ident
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Unary(Node):
    op: str
    operand: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Binary(Node):
    """Arithmetic, comparison, `contains`, `and`, `or` and `??`."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Not(Node):
    operand: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class IsType(Node):
    operand: Expr
    type_name: Ident
    negated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Ternary(Node):
    condition: Expr
    then: Expr
    otherwise: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class AnyOf(Node):
    collection: Expr
    condition: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Spread(Node):
    value: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry(Node):
    """`key: value` in an object literal, a field block or an option block."""

    key: str
    key_span: Span = field(compare=False, repr=False)
    value: Expr
    settings: ObjectLit | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectLit(Node):
    entries: tuple[Entry | Spread, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListLit(Node):
    items: tuple[Expr | Spread, ...]


# ---------------------------------------------------------------- patterns (§4.9.1)
# The grammar reads a pattern as an expression; the AST builder turns it into one
# of these, one node type per row of the §4.9.1 table. Anything else becomes an
# `InvalidPattern`, which the checker reports as E315, so the rest of the file is
# still checked.


@dataclass(frozen=True, slots=True, kw_only=True)
class WildcardPattern(Node):
    """`_`: any value, `null` and absent included."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LiteralPattern(Node):
    """A string, number (optionally negative), duration, boolean or `null`; `kind` as in Literal."""

    value: object
    kind: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaPattern(Node):
    """A name starting with an upper-case letter: a value matching that schema."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingPattern(Node):
    """Any other name: accepts every value and binds it."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldPattern(Node):
    """`key: pattern` inside an object pattern."""

    key: str
    key_span: Span = field(compare=False, repr=False)
    pattern: Pattern


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectPattern(Node):
    """`{ key: pattern, … [, ...rest] }`; `rest` is a binding, `_` (`..._`) or None."""

    fields: tuple[FieldPattern, ...]
    rest: BindingPattern | WildcardPattern | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListPattern(Node):
    """`[p1, …, pn]`: exactly n elements."""

    items: tuple[Pattern, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListRestPattern(Node):
    """`[p1, …, pk, ...rest]`: at least k elements; `rest` binds the others (or is `_`)."""

    items: tuple[Pattern, ...]
    rest: BindingPattern | WildcardPattern


@dataclass(frozen=True, slots=True, kw_only=True)
class ListOfPattern(Node):
    """`[SchemaName]`: a list whose every element matches the schema (a list type)."""

    schema: str
    schema_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class InvalidPattern(Node):
    """An expression in pattern position that is none of the forms above (E315 at check)."""

    message: str


Pattern = Union[WildcardPattern, LiteralPattern, SchemaPattern, BindingPattern, ObjectPattern,
                ListPattern, ListRestPattern, ListOfPattern, InvalidPattern]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExprArm(Node):
    """`pattern [where guard] => result`; without a subject `pattern` is None and
    `condition` holds the arm's condition (None for `_`)."""

    pattern: Pattern | None
    condition: Expr | None
    guard: Expr | None
    result: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchExpr(Node):
    """`match [subject] { arms }`; `subject` is None in the subject-less form."""

    subject: Expr | None
    arms: tuple[ExprArm, ...]


Expr = Union[
    Literal, Var, SubjectField, Member, Index, FuncCall, Unary, Binary, Not, IsType,
    Ternary, AnyOf, ObjectLit, ListLit, MatchExpr,
]


# ---------------------------------------------------------------- option blocks


@dataclass(frozen=True, slots=True, kw_only=True)
class Options(Node):
    """A `{ key: value … }` block after a declaration or step head."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fields(Node):
    """The field block of `map` and transform variants."""

    entries: tuple[Entry | Spread, ...]


# ---------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch(Node):
    """`source` is the name written between the method and the path (`get Xero "/x"`)."""

    method: str
    path: Expr
    options: Options | None
    source: Ident | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStep(Node):
    source: Ident
    operation: Ident
    options: Options | None


@dataclass(frozen=True, slots=True, kw_only=True)
class For(Node):
    var: Ident
    collection: Expr
    where: Expr | None
    parallel: bool
    body: tuple[Step, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MapStep(Node):
    source: Expr
    target: Ident
    fields: Fields
    as_name: Ident | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Apply(Node):
    transform: Ident
    source: Expr
    as_name: Ident | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Assume(Node):
    condition: Expr
    message: str | None
    warn: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Validate(Node):
    """`target` is None in `validate { … }` (no implicit subject for the conditions)."""

    target: Expr | None
    constraints: tuple[Assume, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStep(Node):
    each: bool
    value: Expr
    store: Ident
    options: Options | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Let(Node):
    name: Ident
    value: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Arm(Node):
    """`pattern [where guard] -> body`; without a subject `pattern` is None and
    `condition` holds the arm's condition (None for `_`)."""

    pattern: Pattern | None
    condition: Expr | None
    guard: Expr | None
    body: tuple[Step, ...]
    is_block: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchStep(Node):
    """`match [subject] { arms }`; `subject` is None in the subject-less form."""

    subject: Expr | None
    arms: tuple[Arm, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait(Node):
    options: Options


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip(Node):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Continue(Node):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Abort(Node):
    message: Expr | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry(Node):
    options: Options | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue(Node):
    store: Ident
    options: Options | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Jump(Node):
    action: Ident
    then: str | None  # None, "retry" or "continue"


Step = Union[
    Fetch, CallStep, For, MapStep, Apply, Validate, StoreStep, Let, MatchStep, Wait,
    Skip, Continue, Abort, Retry, Queue, Jump,
]


# ---------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True, kw_only=True)
class Source(Node):
    name: Ident
    document: str | None
    options: Options


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreDecl(Node):
    name: Ident
    kind: Ident
    target: str
    target_span: Span = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TypeName(Node):
    """A named type, with an element type for `array<T>`."""

    name: str
    arg: TypeExpr | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InlineType(Node):
    fields: tuple[SchemaField, ...]


TypeExpr = Union[TypeName, InlineType]


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaField(Node):
    name: str
    type_expr: TypeExpr
    optional: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema(Node):
    name: Ident
    fields: tuple[SchemaField, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Variant(Node):
    """One variant of a transform; `source` is None for a variant that takes any input."""

    source: Ident | None
    where: Expr | None
    target: Ident
    fields: Fields


@dataclass(frozen=True, slots=True, kw_only=True)
class Transform(Node):
    name: Ident
    variants: tuple[Variant, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSetting(Node):
    key: str
    value: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Action(Node):
    """`settings` keep their position: `misplaced` ones came after the first step (E404)."""

    name: Ident
    settings: tuple[ActionSetting, ...]
    misplaced: tuple[ActionSetting, ...]
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage(Node):
    actions: tuple[Ident, ...]
    parallel: bool
    options: Options | None
    condition: Expr | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Run(Node):
    stages: tuple[Stage, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleMember(Node):
    """A scheduling member written next to `schedule:` in a mission (§3.7): `timezone: "UTC"`."""

    key: str
    value: Expr


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule(Node):
    """`kind` is every, cron or at; `every` carries count+unit or a duration in ms.

    `members` are the mission's scheduling members (§3.7), carried here by the parser so
    that whatever runs the schedule finds its settings in one place; `text_span` covers
    the cron or `at` string, where E307 points.
    """

    kind: str
    count: int | None = None
    unit: Ident | None = None
    duration_ms: int | None = None
    text: str | None = None
    text_span: Span | None = None
    options: Options | None = None
    members: tuple[ScheduleMember, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting(Node):
    """A mission setting: `maxConcurrency: …` or `parallelMode: …`."""

    key: str
    value: Expr


Part = Union[Action, Schema, Transform]


@dataclass(frozen=True, slots=True, kw_only=True)
class Mission(Node):
    name: Ident
    sources: tuple[Source, ...] = ()
    stores: tuple[StoreDecl, ...] = ()
    schemas: tuple[Schema, ...] = ()
    transforms: tuple[Transform, ...] = ()
    actions: tuple[Action, ...] = ()
    runs: tuple[Run, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    settings: tuple[Setting, ...] = ()
    schedule_members: tuple[ScheduleMember, ...] = ()


Declaration = Union[Mission, Action, Schema, Transform]


@dataclass(frozen=True, slots=True, kw_only=True)
class Program(Node):
    """One parsed file."""

    file: str
    declarations: tuple[Declaration, ...]
