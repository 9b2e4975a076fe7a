"""The static checker (LANGUAGE.md §9): clean examples, golden diagnostics, robustness.

Golden files: `tests/fixtures/checker/<code>-<slug>.vague` (or a directory holding
a multi-file mission) next to `<same>.expected`, the rendered diagnostics as the
CLI prints them. `REQON_UPDATE_GOLDEN=1 pytest tests/test_checker.py` rewrites the
expected files; read every changed one before committing — they are the
specification of the messages.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from reqon import ast
from reqon.checker import check_loaded, check_mission
from reqon.timetable import at_problem, cron_problem, timezone_problem
from reqon.diagnostics import Diagnostic, render_all, sort_key
from reqon.loader import Loaded, load_path, load_text

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "checker"
SPEC_EXAMPLES = REPO.parent / "shared" / "spec" / "examples"
EXAMPLE_PATHS = sorted(
    [p for p in SPEC_EXAMPLES.glob("*.vague")] + [p for p in SPEC_EXAMPLES.iterdir() if (p / "mission.vague").is_file()]
    if SPEC_EXAMPLES.is_dir() else []
) + sorted((REPO / "examples").glob("*.vague"))

CODES_OF_SECTION_9 = (
    [f"E{n}" for n in (101, 102, 103, 104, 105, 106, 107)]
    + [f"E{n}" for n in range(201, 218)]
    + [f"E{n}" for n in range(301, 319)]
    + [f"E{n}" for n in range(401, 407)]
    + [f"W{n}" for n in range(501, 521)]
)


def diagnose(loaded: Loaded) -> list[Diagnostic]:
    """What `reqon check` reports: load problems, and the checker's findings if it can run."""
    found = list(loaded.diagnostics)
    if not loaded.has_errors:
        found += check_loaded(loaded)
    order = loaded.file_order()
    return sorted(found, key=lambda d: sort_key(d, order))


# ---------------------------------------------------------------- examples


# Warnings each example legitimately draws; every example is expected to be clean.
EXPECTED_EXAMPLE_WARNINGS: dict[str, set[str]] = {}


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=lambda p: p.name)
def test_example_has_no_error_and_only_expected_warnings(path: Path) -> None:
    loaded = load_path(str(path))
    found = diagnose(loaded)
    assert not [d for d in found if d.is_error], render_all(found, loaded.files)
    assert {d.code for d in found} == EXPECTED_EXAMPLE_WARNINGS.get(path.name, set()), \
        render_all(found, loaded.files)


def test_examples_are_found() -> None:
    assert len(EXAMPLE_PATHS) >= 4


# ---------------------------------------------------------------- golden diagnostics


def _golden_inputs() -> list[Path]:
    files = sorted(FIXTURES.glob("*.vague"))
    directories = sorted(p for p in FIXTURES.iterdir() if (p / "mission.vague").is_file())
    return sorted(files + directories)


GOLDEN = _golden_inputs()


@pytest.mark.parametrize("fixture", GOLDEN, ids=lambda p: p.name)
def test_golden_diagnostics(fixture: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)  # display names relative to the fixture folder
    loaded = load_path(fixture.name)
    rendered = render_all(diagnose(loaded), loaded.files)
    expected = fixture.with_name(fixture.name.removesuffix(".vague") + ".expected")
    if os.environ.get("REQON_UPDATE_GOLDEN") == "1":
        expected.write_text(rendered, "utf-8")
    assert rendered == expected.read_text("utf-8")


@pytest.mark.parametrize("fixture", GOLDEN, ids=lambda p: p.name)
def test_fixture_draws_the_code_it_is_named_after(fixture: Path) -> None:
    code = fixture.name.split("-", 1)[0]
    expected = fixture.with_name(fixture.name.removesuffix(".vague") + ".expected")
    assert re.search(rf"(error|warning)\[{code}\]", expected.read_text("utf-8"))


def test_every_code_of_section_9_has_a_golden_fixture() -> None:
    covered = {p.name.split("-", 1)[0] for p in GOLDEN}
    assert set(CODES_OF_SECTION_9) <= covered, sorted(set(CODES_OF_SECTION_9) - covered)


def test_multi_file_duplicate_names_both_part_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    loaded = load_path("E203-duplicate-across-parts")
    [dup] = [d for d in check_loaded(loaded) if d.code == "E203"]
    assert dup.span.file == str(Path("E203-duplicate-across-parts/actions/fetch.vague"))
    [(note, first)] = dup.notes
    assert first is not None and first.file == str(Path("E203-duplicate-across-parts/actions/fetch-again.vague"))


# ---------------------------------------------------------------- API details


def test_check_mission_resolves_documents_against_base_dir() -> None:
    text = 'mission M { source S from "openapi/shop.yaml" { auth: none } action A { call S.nope } run A }'
    loaded = load_text(text, "<input>")
    [mission] = loaded.missions
    found = check_mission(mission, base_dir=FIXTURES)
    assert [(d.code, d.message) for d in found] == [("E213", "unknown operation 'nope' in openapi/shop.yaml")]


def test_diagnostics_come_sorted_by_position() -> None:
    loaded = load_path(str(FIXTURES / "E305-bad-words.vague"))
    found = check_loaded(loaded)
    positions = [(d.span.line, d.span.column) for d in found]
    assert positions == sorted(positions) and len(found) > 3


def test_a_clean_mission_has_no_diagnostics() -> None:
    text = '''mission M {
      source S { auth: none, base: "http://127.0.0.1:9" }
      store items: memory("items")
      action A { get "/x" store response -> items { key: .id } }
      run A
    }'''
    assert check_loaded(load_text(text)) == []


@pytest.mark.parametrize("text", ["30 6 * * 1-5", "*/15 * * * *", "0 0 1,15 * 0", "0-30/10 0-23/2 1-31 1-12 0-6",
                                  "59 23 31 12 6"])
def test_valid_cron_expressions(text: str) -> None:
    assert cron_problem(text) is None


@pytest.mark.parametrize("text, fragment", [
    ("60 * * * *", "the minute field is not valid (values 0-59"),
    ("* * 0 * *", "the day-of-month field is not valid (values 1-31"),
    ("* * * * 8", "the day-of-week field is not valid (values 0-6, 0 = Sunday"),
    ("5-1 * * * *", "the minute field is not valid"),
    ("*/0 * * * *", "the minute field is not valid"),
    ("* 24 * * *", "the hour field is not valid (values 0-23"),
    ("* * * 13 *", "the month field is not valid (values 1-12"),
    ("1,,2 * * * *", "the minute field is not valid"),
    ("* * * *", "found 4"),
])
def test_invalid_cron_expressions(text: str, fragment: str) -> None:
    problem = cron_problem(text)
    assert problem is not None and fragment in problem


def test_at_and_timezone() -> None:
    assert at_problem("2026-09-01T02:00:00Z") is None
    assert at_problem("2026-09-01T02:00:00+02:00") is None
    assert at_problem("next tuesday") is not None
    assert timezone_problem("Europe/Amsterdam") is None
    assert timezone_problem("Mars/Olympus") is not None
    assert timezone_problem("../etc/passwd") is not None


# ---------------------------------------------------------------- robustness


def _without_one_step(mission: ast.Mission) -> Iterator[ast.Mission]:
    """Every mission obtained by deleting one step (at any depth) of one action."""
    for i, action in enumerate(mission.actions):
        for steps in _step_deletions(action.steps):
            actions = list(mission.actions)
            actions[i] = dataclasses.replace(action, steps=steps)
            yield dataclasses.replace(mission, actions=tuple(actions))


def _step_deletions(steps: tuple[ast.Step, ...]) -> Iterator[tuple[ast.Step, ...]]:
    for i, step in enumerate(steps):
        yield steps[:i] + steps[i + 1:]
        for inner in _inner_deletions(step):
            yield steps[:i] + (inner,) + steps[i + 1:]


def _inner_deletions(step: ast.Step) -> Iterator[ast.Step]:
    if isinstance(step, ast.For):
        for body in _step_deletions(step.body):
            yield dataclasses.replace(step, body=body)
    elif isinstance(step, ast.MatchStep):
        for j, arm in enumerate(step.arms):
            for body in _step_deletions(arm.body):
                arms = list(step.arms)
                arms[j] = dataclasses.replace(arm, body=body)
                yield dataclasses.replace(step, arms=tuple(arms))
            yield dataclasses.replace(step, arms=step.arms[:j] + step.arms[j + 1:])


def _all_missions() -> list[ast.Mission]:
    missions = []
    for path in EXAMPLE_PATHS + GOLDEN:
        missions.extend(load_path(str(path)).missions)
    return missions


def test_checking_never_raises_on_step_deletions() -> None:
    checked = 0
    for mission in _all_missions():
        for variant in _without_one_step(mission):
            check_mission(variant)
            checked += 1
        for i in range(len(mission.actions)):  # and without each whole action
            check_mission(dataclasses.replace(mission, actions=mission.actions[:i] + mission.actions[i + 1:]))
        check_mission(dataclasses.replace(mission, runs=(), sources=()))
    assert checked > 200
