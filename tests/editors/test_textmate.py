"""The TextMate grammar under the real VS Code engine, driven from pytest (CI runs pytest only).

`editors/test` is a small Node project (vscode-textmate + vscode-oniguruma, pinned);
`npm ci` installs it on first use. Its own tests (`grammar.test.mjs`) tokenize every
example mission and check the shared samples; here we also compare, character by
character, the TextMate scopes with the Pygments classes on every example and sample.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    _TokenType,
)

from reqon.highlight import ReqonLexer

from .corpus import EXAMPLE_DIRS, NODE_TESTS, example_files, samples, source

# The Pygments class each TextMate scope stands for; see docs/editors.md.
SCOPE_CLASSES: dict[str, _TokenType] = {
    "comment.line.double-slash.reqon": Comment.Single,
    "comment.block.reqon": Comment.Multiline,
    "meta.placeholder.reqon": String.Interpol,
    "constant.character.escape.reqon": String.Escape,
    "string.quoted.double.reqon": String.Double,
    "string.quoted.single.reqon": String.Single,
    "keyword.control.reqon": Keyword,
    "keyword.other.http-method.reqon": Keyword,
    "keyword.other.contextual.reqon": Keyword.Pseudo,
    "storage.type.reqon": Keyword.Declaration,
    "entity.name.type.reqon": Name.Class,
    "entity.name.function.reqon": Name.Function,
    "constant.language.reqon": Name.Constant,
    "support.function.builtin.reqon": Name.Builtin,
    "variable.other.property.reqon": Name.Attribute,
    "variable.other.reqon": Name.Variable,
    "constant.numeric.integer.reqon": Number.Integer,
    "constant.numeric.decimal.reqon": Number.Float,
    "constant.numeric.duration.reqon": Number.Other,
    "keyword.operator.word.reqon": Operator.Word,
    "keyword.operator.reqon": Operator,
    "keyword.operator.spread.reqon": Operator,
    "invalid.illegal.character.reqon": Text,
}
_PUNCTUATION = ("punctuation.section.", "punctuation.separator.", "punctuation.accessor.")


def scope_class(scopes: list[str]) -> _TokenType | None:
    """The class of the innermost scope that has one (`punctuation.definition.*` has none)."""
    for scope in reversed(scopes):
        if scope in SCOPE_CLASSES:
            return SCOPE_CLASSES[scope]
        if scope.startswith(_PUNCTUATION):
            return Punctuation
    return None


@pytest.fixture(scope="module")
def node_project() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the TextMate grammar tests; not on PATH")
    if not (NODE_TESTS / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_TESTS, check=True,
                       capture_output=True, timeout=300)
    return NODE_TESTS


def test_node_tests_pass(node_project: Path) -> None:
    folders = [str(folder) for folder in EXAMPLE_DIRS if folder.is_dir()]
    env = {**os.environ, "REQON_EXAMPLE_DIRS": os.pathsep.join(folders)}
    run = subprocess.run(["node", "--test", "--test-reporter=tap", "grammar.test.mjs"],
                         cwd=node_project, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"^# fail 0$", run.stdout, re.M), run.stdout
    tokenized = re.search(r"tokenized (\d+) example files", run.stdout)
    assert tokenized and int(tokenized.group(1)) == len(example_files()), run.stdout
    passed = re.search(r"^# pass (\d+)$", run.stdout, re.M)
    assert passed and int(passed.group(1)) == len(samples()) + 1, run.stdout


def textmate_classes(node_project: Path, files: list[Path]) -> dict[str, list[_TokenType | None]]:
    run = subprocess.run(["node", "scopes.mjs", *map(str, files)], cwd=node_project,
                         capture_output=True, text=True, timeout=120, check=True)
    result = {}
    for name, runs in json.loads(run.stdout).items():
        per_char: list[_TokenType | None] = [None] * len(Path(name).read_text("utf-8"))
        for start, end, scopes in runs:
            per_char[start:end] = [scope_class(scopes)] * (end - start)
        result[name] = per_char
    return result


def pygments_classes(text: str) -> list[_TokenType]:
    return [t for _, t, value in ReqonLexer().get_tokens_unprocessed(text) for _ in value]


def all_sources(tmp_path: Path) -> Iterator[Path]:
    yield from example_files()
    for index, sample in enumerate(samples()):
        path = tmp_path / f"sample-{index}.vague"
        path.write_text(source(sample), "utf-8")
        yield path


def test_textmate_and_pygments_agree_on_every_character(node_project: Path, tmp_path: Path) -> None:
    files = list(all_sources(tmp_path))
    textmate = textmate_classes(node_project, files)
    disagreements = []
    for path in files:
        text = path.read_text("utf-8")
        for i, (tm, py) in enumerate(zip(textmate[str(path)], pygments_classes(text), strict=True)):
            if tm != py and not text[i].isspace():
                line = text.count("\n", 0, i) + 1
                disagreements.append(f"{path.name}:{line}: {text[i]!r} TextMate {tm}, Pygments {py}")
    assert disagreements[:20] == []
