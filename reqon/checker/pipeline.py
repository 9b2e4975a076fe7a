"""The run pipeline (§3.6) and the analyses that need the whole mission (§9).

`check_run` checks each stage on its own (E201, E202, E204, E205, stage
options, W508, stage conditions). `check_flow` then combines the per-action
summaries: the jump graph is condensed once into strongly connected
components (E212 cycles) and transitive closures kept as integer bitsets, so
"which actions does this stage run, jumps included" costs one OR per edge
rather than a walk per stage (W501, W502, W506, W509, W520).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from reqon import ast
from reqon.checker import options as opt
from reqon.checker.context import ActionSummary, Context, head, suggest
from reqon.checker.declarations import MODES, mission_mode
from reqon.checker.expressions import ExprChecker
from reqon.checker.scopes import Scope

STAGE_OPTIONS = ("mode", "maxConcurrency", "timeout")


@dataclass
class StageInfo:
    """One stage of the first pipeline, as the flow analyses need it."""

    stage: ast.Stage
    branches: list[ast.Ident]  # known actions, in order, without duplicates
    tolerant: bool  # its failures can end up in `errors` (best-effort, or a parallel race)
    errors_reads: list[ast.Span] = field(default_factory=list)


def check_run(ctx: Context) -> list[StageInfo]:
    """Static checks of every stage; returns the stages of the first `run` for `check_flow`."""
    runs = ctx.mission.runs
    if not runs:
        ctx.error("E201", ctx.mission.name.span, f"mission '{ctx.mission.name.name}' has no 'run' pipeline",
                  "add e.g. run FirstAction then SecondAction")
        return []
    for extra in runs[1:]:
        ctx.error("E202", head(extra.span, 3), "a mission has exactly one 'run'",
                  "chain the stages with 'then' in one pipeline",
                  notes=(("first run here", head(runs[0].span, 3)),))
    infos = [[_stage(ctx, stage) for stage in run.stages] for run in runs]
    return infos[0]


def _stage(ctx: Context, stage: ast.Stage) -> StageInfo:
    branches: dict[str, ast.Ident] = {}
    for ident in stage.actions:
        if ident.name not in ctx.actions:
            ctx.error("E204", ident.span, f"unknown action '{ident.name}'", *suggest(ident.name, ctx.actions))
        elif ident.name in branches:
            ctx.error("E205", ident.span, f"action '{ident.name}' appears twice in one stage",
                      "an action may run in several stages, but only once per stage",
                      notes=(("first named here", branches[ident.name].span),))
        else:
            branches[ident.name] = ident
    mode = _stage_options(ctx, stage)
    if mode is None:
        mode = (mission_mode(ctx) or "wait-all") if stage.parallel else "wait-all"
    info = StageInfo(stage, list(branches.values()),
                     mode == "best-effort" or (stage.parallel and mode == "race"))
    if stage.condition is not None:
        summary = ActionSummary()
        ExprChecker(ctx, summary, "a stage condition").check(stage.condition, Scope(None), False)
        info.errors_reads = summary.errors_reads
    return info


def _stage_options(ctx: Context, stage: ast.Stage) -> str | None:
    """Stage options (§3.6.3); returns the stage's valid `mode`, if given."""
    if stage.options is None:
        return None
    mode = None
    for key, entry in opt.keyed_entries(ctx, stage.options.entries, STAGE_OPTIONS, "stage option").items():
        opt.no_settings(ctx, entry)
        if key == "mode":
            mode = opt.word(ctx, entry.value, key, MODES, bare=False)
            if mode is not None and mode != "best-effort" and not stage.parallel:
                ctx.warn("W508", entry.value.span, f"mode \"{mode}\" has no effect on a single stage",
                         "only \"best-effort\" changes a single stage; bracket it for a parallel stage: [A]")
        elif key == "maxConcurrency":
            opt.integer(ctx, entry.value, key)
            if not stage.parallel:
                ctx.warn("W508", entry.key_span, "'maxConcurrency' has no effect on a single stage",
                         "it limits the branches of a parallel stage: [A, B]")
        else:
            opt.duration(ctx, entry.value, key, positive=True)
    return mode


# ---------------------------------------------------------------- whole-mission analyses
def check_flow(ctx: Context, stages: list[StageInfo]) -> None:
    names = list(ctx.actions)
    index = {name: i for i, name in enumerate(names)}
    summaries = [ctx.summaries.get(name, ActionSummary()) for name in names]
    successors = [[index[j.name] for j in s.jumps if j.name in index] for s in summaries]
    component, closures = _closures(successors)
    _jump_cycles(ctx, names, summaries, index, component, successors)
    _unused(ctx)
    _unused_settings(ctx)
    stage_masks = []
    for info in stages:
        mask = 0
        for ident in info.branches:
            mask |= closures[component[index[ident.name]]]
        stage_masks.append(mask)
    _empty_errors(ctx, stages, stage_masks, summaries)
    for info in stages:
        if info.stage.parallel and len(info.branches) > 1:
            _timing_reads(ctx, info, [closures[component[index[b.name]]] for b in info.branches], summaries)


def _closures(successors: list[list[int]]) -> tuple[list[int], list[int]]:
    """Tarjan's SCCs (iterative) and, per component, the bitset of actions it can reach."""
    n = len(successors)
    order = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    component = [-1] * n
    closures: list[int] = []
    counter = 0
    for root in range(n):
        if order[root] != -1:
            continue
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            v, i = work[-1]
            if i < len(successors[v]):
                work[-1] = (v, i + 1)
                w = successors[v][i]
                if order[w] == -1:
                    order[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack[w] = True
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], order[w])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == order[v]:
                closures.append(_pop_component(v, stack, on_stack, component, len(closures), successors,
                                               closures))
    return component, closures


def _pop_component(v: int, stack: list[int], on_stack: list[bool], component: list[int], number: int,
                   successors: list[list[int]], closures: list[int]) -> int:
    """Pop one SCC; its closure ORs the closures of components found earlier (its successors)."""
    members = []
    while True:
        w = stack.pop()
        on_stack[w] = False
        component[w] = number
        members.append(w)
        if w == v:
            break
    mask = 0
    for member in members:
        mask |= 1 << member
        for w in successors[member]:
            if component[w] != number:
                mask |= closures[component[w]]
    return mask


def _jump_cycles(ctx: Context, names: list[str], summaries: list[ActionSummary], index: dict[str, int],
                 component: list[int], successors: list[list[int]]) -> None:
    for v, summary in enumerate(summaries):
        for ident in summary.jumps:
            w = index.get(ident.name)
            if w is None or component[w] != component[v]:
                continue
            path = _path(w, v, component, successors)
            cycle = " -> ".join(names[i] for i in [v] + path)
            ctx.error("E212", ident.span, f"jump cycle: {cycle}",
                      "an action must not reach itself through jumps")


def _path(start: int, goal: int, component: list[int], successors: list[list[int]]) -> list[int]:
    """Shortest jump path start → … → goal inside one component (it exists: same SCC)."""
    previous = {start: start}
    queue = deque([start])
    while queue and goal not in previous:
        v = queue.popleft()
        for w in successors[v]:
            if w not in previous and component[w] == component[start]:
                previous[w] = v
                queue.append(w)
    path = [goal]
    while path[-1] != start:
        path.append(previous[path[-1]])
    return path[::-1]


def _unused(ctx: Context) -> None:
    """W501 for actions nothing runs, W502 for other declarations nothing uses."""
    run_names = {ident.name for run in ctx.mission.runs for stage in run.stages for ident in stage.actions}
    for action in ctx.mission.actions if ctx.mission.runs else ():  # without run: E201 says it all
        name = action.name.name
        if ctx.actions.get(name) is action and name not in run_names and name not in ctx.jump_targets:
            ctx.warn("W501", action.name.span, f"action '{name}' is never run",
                     "name it in the run pipeline or jump to it")
    groups = (("source", ctx.mission.sources, ctx.sources, ctx.used_sources),
              ("store", ctx.mission.stores, ctx.stores, ctx.used_stores),
              ("schema", ctx.mission.schemas, ctx.schemas, ctx.used_schemas),
              ("transform", ctx.mission.transforms, ctx.transforms, ctx.used_transforms))
    for kind, decls, table, used in groups:
        for decl in decls:
            name = decl.name.name
            if table.get(name) is decl and name not in used:
                ctx.warn("W502", decl.name.span, f"{kind} '{name}' is never used")


def _unused_settings(ctx: Context) -> None:
    """W509: branch limits and modes of a mission that has no parallel stage."""
    if any(stage.parallel for run in ctx.mission.runs for stage in run.stages):
        return
    seen: set[str] = set()
    for setting in ctx.mission.settings:
        if setting.key in seen:
            continue
        seen.add(setting.key)
        ctx.warn("W509", head(setting.span, len(setting.key)),
                 f"'{setting.key}' has no effect: the mission has no parallel stage",
                 "it applies to stages written in brackets: [A, B]")


def _empty_errors(ctx: Context, stages: list[StageInfo], masks: list[int],
                  summaries: list[ActionSummary]) -> None:
    """W506: `errors` read where no earlier stage can have tolerated a failure."""
    tolerant_before = []
    seen_tolerant = False
    for info in stages:
        tolerant_before.append(seen_tolerant)
        seen_tolerant = seen_tolerant or info.tolerant
    for info, tolerant in zip(stages, tolerant_before):
        if not tolerant:
            for span in info.errors_reads:
                _warn_empty_errors(ctx, span)
    for i, summary in enumerate(summaries):
        if not summary.errors_reads:
            continue
        bit = 1 << i
        where = [k for k, mask in enumerate(masks) if mask & bit]
        if where and not any(tolerant_before[k] for k in where):
            for span in summary.errors_reads:
                _warn_empty_errors(ctx, span)


def _warn_empty_errors(ctx: Context, span: ast.Span) -> None:
    ctx.warn("W506", span, "'errors' is always empty here",
             "only failures of an earlier best-effort or race stage are recorded in 'errors'")


def _timing_reads(ctx: Context, info: StageInfo, masks: list[int], summaries: list[ActionSummary]) -> None:
    """W520: a branch reads a store that a sibling branch of the same stage writes."""
    reads = [_merged(mask, summaries, "store_reads") for mask in masks]
    writes = [_merged(mask, summaries, "store_writes") for mask in masks]
    for i, branch in enumerate(info.branches):
        for store in sorted(reads[i]):
            writer = next((j for j in range(len(masks)) if j != i and store in writes[j]), None)
            if writer is None:
                continue
            ctx.warn("W520", branch.span,
                     f"branch '{branch.name}' reads store '{store}', which sibling branch "
                     f"'{info.branches[writer].name}' writes",
                     "what it reads depends on timing; read it in a later stage",
                     notes=(("read here", reads[i][store]), ("written here", writes[writer][store])))


def _merged(mask: int, summaries: list[ActionSummary], attribute: str) -> dict[str, ast.Span]:
    merged: dict[str, ast.Span] = {}
    while mask:
        low = mask & -mask
        for store, span in getattr(summaries[low.bit_length() - 1], attribute).items():
            merged.setdefault(store, span)
        mask ^= low
    return merged
