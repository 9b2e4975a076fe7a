"""The static checker of LANGUAGE.md §9: every E2xx–E4xx error and every W5xx warning.

    check_loaded(loaded) -> list[Diagnostic]      # everything `load_path` returned
    check_mission(mission, base_dir=None) -> list[Diagnostic]

Passes, in order, over one mission (each module documents its own):

1. `declarations` — symbol table (E203, E106), sources, stores, schemas,
   transforms, mission settings and schedule;
2. `actions` — every action body: steps and their options, names and scopes
   with implicit subjects (`expressions`), flow directives; leaves one
   `ActionSummary` per action;
3. `pipeline` — the run stages, then whole-mission analyses over the
   summaries (jump cycles, unused declarations, W506, W509, W520).

Diagnostics are returned sorted by file load order, line and column.
"""
from __future__ import annotations

from pathlib import Path

from reqon import ast
from reqon.checker.actions import ActionWalker
from reqon.checker.context import Context
from reqon.checker.declarations import build_symbols, check_declarations
from reqon.checker.pipeline import check_flow, check_run
from reqon.diagnostics import Diagnostic, error, sort_key
from reqon.loader import Loaded

__all__ = ["check_loaded", "check_mission"]


def check_mission(mission: ast.Mission, base_dir: Path | None = None) -> list[Diagnostic]:
    """Check one (merged) mission; `base_dir` overrides where OpenAPI documents are looked up."""
    ctx = Context(mission, base_dir)
    build_symbols(ctx)
    check_declarations(ctx)
    walker = ActionWalker(ctx)
    for action in mission.actions:  # a duplicate (E203) is checked too; its summary joins the first's
        walker.check(action)
    stages = check_run(ctx)
    check_flow(ctx, stages)
    order = _file_order(mission)
    return sorted(ctx.diagnostics, key=lambda d: sort_key(d, order))


def _file_order(mission: ast.Mission) -> dict[str, int]:
    """The mission's own file first, then part files by path, the order the loader reads them."""
    parts = {part.span.file for part in mission.schemas + mission.transforms + mission.actions}
    return {file: i for i, file in enumerate([mission.span.file] + sorted(parts - {mission.span.file}))}


def _checked(mission: ast.Mission) -> list[Diagnostic]:
    """The checker walks expressions recursively; a pathological depth becomes a diagnostic."""
    try:
        return check_mission(mission)
    except RecursionError:
        return [error("E101", mission.name.span, f"an expression in mission '{mission.name.name}' is "
                      "nested too deeply to check", "split it into several 'let' steps")]


def check_loaded(loaded: Loaded) -> list[Diagnostic]:
    """Check every mission of a loaded path, plus E203 for two missions of one file with one name."""
    found: list[Diagnostic] = []
    for program in loaded.programs:
        first: dict[str, ast.Mission] = {}
        for decl in program.declarations:
            if not isinstance(decl, ast.Mission):
                continue
            earlier = first.setdefault(decl.name.name, decl)
            if earlier is not decl:
                found.append(error("E203", decl.name.span, f"duplicate mission '{decl.name.name}'",
                                   notes=(("first declared here", earlier.name.span),)))
    for mission in loaded.missions:
        found.extend(_checked(mission))
    order = loaded.file_order()
    return sorted(found, key=lambda d: sort_key(d, order))
