"""What a remote executor ships for one unit of work, and what comes back (issue 15).

A unit is a branch of a parallel stage or a chunk of a `for … parallel` loop's
iterations. Its description names the action or loop by position in the mission
(every worker holds the mission), carries the values the unit starts from (the
enclosing scope, the mission scope, snapshots of the stores it reads) and nothing
secret. Its result carries every store step it applied, in order, so that the
driver writes them, exactly once, into the real stores; the checkpoints it staged;
the iterations it completed; and its failure, if any, as plain data.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from reqon import ast
from reqon.errors import RunError

Value = Any
Write = tuple[str, list[tuple[str, dict[str, Value]]], bool, Any]  # store, records, upsert, partial
LoopId = tuple[str, int]  # file and start offset of the `for` step


def loop_id(step: ast.For) -> LoopId:
    return (step.span.file, step.span.start)


@dataclass
class BranchSpec:
    action: str
    stage: int | None
    branch_index: int | None
    mission_vars: dict[str, Value]
    stores: dict[str, Any]


@dataclass
class IterationsSpec:
    action: str
    branch: str
    stage: int | None
    branch_index: int | None
    loop: LoopId
    iterations: list[tuple[int, dict[str, Value]]]
    scope_vars: Any  # dict[str, Value], or a handle to one shared by every chunk of the loop
    mission_vars: dict[str, Value]
    stores: dict[str, Any]


@dataclass
class ErrorData:
    """A RunError as plain data (exceptions with spans do not travel well)."""

    kind: str
    message: str
    status: int | None
    span: ast.Span | None

    @classmethod
    def of(cls, error: RunError, redact: Callable[[str], str]) -> ErrorData:
        span = error.span if isinstance(error.span, ast.Span) else None
        return cls(error.kind, redact(error.message), error.status, span)

    def error(self) -> RunError:
        return RunError(kind=self.kind, message=self.message, status=self.status,  # type: ignore[arg-type]
                        span=self.span)


@dataclass
class UnitResult:
    writes: list[Write] = field(default_factory=list)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    completed: list[int] = field(default_factory=list)
    warnings: list[tuple[str, ast.Span]] = field(default_factory=list)
    requests: int = 0
    error: ErrorData | None = None


@dataclass
class LoopShipment:
    """What every chunk of one execution of a parallel loop shares (shipped once)."""

    step: ast.For
    scope: Any
    items: Sequence[Value]
    bindings: Callable[[int], dict[str, Value]]
    handle: Any = None  # the executor's handle to `scope_vars`, once shipped


def flatten_scope(scope: Any, stop: Any) -> dict[str, Value]:
    """The variables visible in `scope` below the mission scope `stop`, innermost winning."""
    chain = []
    while scope is not None and scope is not stop:
        chain.append(scope.vars)
        scope = scope.parent
    merged: dict[str, Value] = {}
    for variables in reversed(chain):
        merged.update(variables)
    return merged


# ---------------------------------------------------------------- which stores a unit reads


def names_used(nodes: Sequence[Any]) -> set[str]:
    """Every bare name read anywhere under `nodes` (variables and store names alike)."""
    found: set[str] = set()
    for node in walk(nodes):
        if isinstance(node, ast.Var):
            found.add(node.name)
    return found


def walk(nodes: Sequence[Any]) -> Iterator[Any]:
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend(node)
            continue
        if not dataclasses.is_dataclass(node) or isinstance(node, (ast.Span, type)):
            continue
        yield node
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if isinstance(value, (list, tuple)) or dataclasses.is_dataclass(value):
                stack.append(value)


def reachable_actions(start: Sequence[Any], actions: dict[str, ast.Action]) -> list[ast.Action]:
    """The actions that `jump` steps under `start` can reach, transitively."""
    seen: dict[str, ast.Action] = {}
    pending = list(start)
    while pending:
        for node in walk([pending.pop()]):
            if isinstance(node, ast.Jump) and node.action.name not in seen:
                target = actions.get(node.action.name)
                if target is not None:
                    seen[node.action.name] = target
                    pending.append(target)
    return list(seen.values())
