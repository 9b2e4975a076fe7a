"""The VS Code extension's static files agree with the language and with each other."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import reqon
from reqon.highlight import ReqonLexer
from reqon.parser import parse

from .corpus import EDITORS, TM_GRAMMAR

EXTENSION = EDITORS / "vscode"


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def test_manifest_contributes_the_language_grammar_and_snippets() -> None:
    manifest = load(EXTENSION / "package.json")
    assert (manifest["name"], manifest["publisher"]) == ("reqon-language", "reqon")
    assert manifest["version"] == reqon.__version__
    [language] = manifest["contributes"]["languages"]
    assert language["id"] == "reqon"
    assert [f"*{e}" for e in language["extensions"]] == ReqonLexer.filenames
    [tm] = manifest["contributes"]["grammars"]
    assert tm["scopeName"] == load(TM_GRAMMAR)["scopeName"] == "source.reqon"
    assert (EXTENSION / tm["path"]).resolve() == TM_GRAMMAR
    for path in (language["configuration"], manifest["contributes"]["snippets"][0]["path"]):
        assert (EXTENSION / path).is_file()


def test_language_configuration_matches_the_comment_syntax() -> None:
    config = load(EXTENSION / "language-configuration.json")
    assert config["comments"] == {"lineComment": "//", "blockComment": ["/*", "*/"]}
    opens = {pair["open"] for pair in config["autoClosingPairs"]}
    assert {'"', "'", "{", "[", "("} <= opens
    assert re.search(config["indentationRules"]["increaseIndentPattern"], "action A {")
    assert not re.search(config["indentationRules"]["increaseIndentPattern"], "get \"/x\" { a: 1 }")
    assert re.search(config["indentationRules"]["decreaseIndentPattern"], "  }")


def expand(body: list[str]) -> str:
    """The text a snippet inserts when every placeholder keeps its default.

    VS Code snippet syntax: `${1:default}` (nestable, closed by an unescaped `}`),
    `${1|first,second|}`, `$1`, and `\\` escapes.
    """
    text = "\n".join(body).replace("\t", "  ")
    out: list[str] = []
    depth = i = 0
    while i < len(text):
        if text[i] == "\\":
            out.append(text[i + 1])
            i += 2
        elif choice := re.match(r"\$\{\d+\|([^,|]*)[^|]*\|\}", text[i:]):
            out.append(choice[1])
            i += choice.end()
        elif opening := re.match(r"\$\{\d+:|\$\d+", text[i:]):
            depth += opening[0].startswith("${")
            i += opening.end()
        elif text[i] == "}" and depth:
            depth -= 1
            i += 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# Where each snippet can be inserted: the text around it.
CONTEXTS = {
    "mission": "{}",
    "source": "mission M {{ {} }}", "store": "mission M {{ {} }}", "schema": "mission M {{ {} }}",
    "transform": "mission M {{ {} }}", "action": "mission M {{ {} }}",
    "run": "mission M {{ {} }}", "schedule": "mission M {{ {} }}",
    "for": "mission M {{ action A {{ {} }} }}", "match": "mission M {{ action A {{ {} }} }}",
    "get": "mission M {{ action A {{ {} }} }}", "validate": "mission M {{ action A {{ {} }} }}",
}
SNIPPETS = load(EXTENSION / "snippets" / "reqon.json")


def test_every_snippet_has_a_context() -> None:
    assert {s["prefix"] for s in SNIPPETS.values()} == set(CONTEXTS)


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet_parses_with_its_defaults(name: str) -> None:
    snippet = SNIPPETS[name]
    text = CONTEXTS[snippet["prefix"]].format(expand(snippet["body"]))
    assert "$" not in text
    parse(text)
