"""What both highlighters are checked against: the example missions and the shared samples.

`editors/test/samples.json` is read by the Node test (TextMate grammar) and by
`test_pygments.py`, so one expectation covers both: each sample has `source` (a list of
lines), `expect` rows `[text, textmate scope, pygments token]` and optional `absent` rows
of the same shape that must not apply. Texts are found in order, each search starting
just after where the previous text starts, so a text may lie inside the previous one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pygments.token import _TokenType, string_to_tokentype

REPO = Path(__file__).resolve().parents[2]
EDITORS = REPO / "editors"
NODE_TESTS = EDITORS / "test"
TM_GRAMMAR = EDITORS / "vscode" / "syntaxes" / "reqon.tmLanguage.json"
EXAMPLE_DIRS = (REPO / "examples", REPO.parent / "shared" / "spec" / "examples")

Sample = dict[str, Any]


def example_files() -> list[Path]:
    return sorted(
        path
        for folder in EXAMPLE_DIRS if folder.is_dir()
        for path in folder.rglob("*")
        if path.suffix in (".vague", ".reqon")
    )


def samples() -> list[Sample]:
    loaded: list[Sample] = json.loads((NODE_TESTS / "samples.json").read_text("utf-8"))
    return loaded


def source(sample: Sample) -> str:
    return "\n".join(sample["source"])


def locate(text: str, rows: list[list[str]]) -> list[tuple[str, range, str, _TokenType]]:
    """(text, character span, TextMate scope, Pygments token) for each row, in order."""
    found = []
    cursor = 0
    for needle, scope, token in rows:
        at = text.find(needle, cursor)
        if at < 0:
            raise LookupError(f"{needle!r} not found from offset {cursor}")
        cursor = at + 1
        found.append((needle, range(at, at + len(needle)), scope, string_to_tokentype(token)))
    return found
