"""The records that the evaluator, the pipeline and the run state all speak of.

They live below all three so that each imports them from here and none imports
another for a type: the run state keys its records by invocations and stage
reports without knowing how either is run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reqon import ast
from reqon.engine.scheduler import Mode, StageOutcome

DEFAULT_LOOP_CONCURRENCY = 10


@dataclass
class Invocation:
    """One action invocation (§6.2): a pipeline branch or a nested `jump`."""

    action: ast.Action
    branch: str
    stage: int | None = None
    branch_index: int | None = None  # position in its stage; None for a `jump`ed invocation
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    wrote: set[str] = field(default_factory=set)
    # The innermost step running when the invocation was cancelled: a stage timeout
    # names it as the failure's position (§7.4 `at`).
    cancelled_at: ast.Span | None = None

    @property
    def concurrency(self) -> int:
        return self.action_concurrency(self.action)

    @staticmethod
    def action_concurrency(action: ast.Action) -> int:
        for setting in action.settings:
            if isinstance(setting.value, ast.Literal) and isinstance(setting.value.value, int):
                return max(1, setting.value.value)
        return DEFAULT_LOOP_CONCURRENCY


@dataclass
class StageReport:
    index: int
    actions: tuple[str, ...]
    parallel: bool
    mode: Mode
    limit: int
    status: str = "pending"
    duration_s: float = 0.0
    outcome: StageOutcome | None = None

    @property
    def label(self) -> str:
        return f"[{', '.join(self.actions)}]" if self.parallel else self.actions[0]

    @property
    def winner(self) -> str | None:
        if self.outcome is None or self.mode is not Mode.RACE or self.outcome.decided_by is None:
            return None
        return self.actions[self.outcome.decided_by] if self.outcome.succeeded else None


@dataclass
class PipelineResult:
    stages: list[StageReport] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    failed_stage: StageReport | None = None
