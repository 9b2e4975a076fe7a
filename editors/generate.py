"""Generate the VS Code TextMate grammar from the Reqon grammar's keyword lists.

Run `.venv/bin/python editors/generate.py` after changing `grammar/reqon.lark` or the
built-in functions; `--check` only reports whether the committed file is stale (the
test suite does the same). The rules mirror `reqon.highlight.ReqonLexer` one for one and
take their words from the same `VOCABULARY`, so VS Code and Pygments agree; the shared
samples in `editors/test/samples.json` check that they do.

TextMate tries every pattern at each position and keeps the match that starts first,
the earlier-listed one on a tie, so the order of `_TOP_LEVEL` matters exactly as the
order of the Pygments rules does: field names before keywords, keywords before names.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reqon.highlight import (
    ESCAPE,
    OPERATOR,
    VOCABULARY,
    WORD_END,
    WORD_START,
    Vocabulary,
    alternation,
)

OUTPUT = Path(__file__).resolve().parent / "vscode" / "syntaxes" / "reqon.tmLanguage.json"

Rule = dict[str, Any]

_TOP_LEVEL = [
    "comments", "strings", "member-keywords", "directive-keywords", "numbers", "accessors",
    "then-keywords", "declarations", "keys", "fetch", "builtins", "infix-keywords",
    "constants", "operator-words", "control-keywords", "operators", "punctuation",
    "identifiers", "invalid",
]


def _scope(name: str) -> dict[str, str]:
    return {"name": f"{name}.reqon"}


def _keyword(words: tuple[str, ...]) -> str:
    return WORD_START + alternation(words) + WORD_END


def _comments() -> Rule:
    return {"patterns": [
        {"name": "comment.line.double-slash.reqon", "match": "(//).*$",
         "captures": {"1": _scope("punctuation.definition.comment")}},
        {"name": "comment.block.reqon", "begin": r"/\*", "end": r"\*/",
         "beginCaptures": {"0": _scope("punctuation.definition.comment")},
         "endCaptures": {"0": _scope("punctuation.definition.comment")}},
    ]}


def _string(quote: str, kind: str, *, path_of: Vocabulary | None = None) -> Rule:
    """A string literal, or with `path_of` a fetch path with placeholders.

    A raw line break ends the string (E102) rather than letting it run on.
    """
    patterns: list[Rule] = [{"include": "#escapes"}]
    if path_of is not None:
        patterns.insert(0, {"include": "#placeholder"})
    return {
        "name": f"string.quoted.{kind}.reqon",
        "begin": quote if path_of is None else path_of.path_opening(quote),
        "beginCaptures": {"0": _scope("punctuation.definition.string.begin")},
        "end": f"({quote})|$",
        "endCaptures": {"1": _scope("punctuation.definition.string.end")},
        "patterns": patterns,
    }


def _fetch(v: Vocabulary) -> Rule:
    """An HTTP method, an optional source name, and the string after it (possibly on a
    later line) as a fetch path.

    The rule ends right after that string, or before anything else but whitespace and
    comments (the end pattern applies last, so a comment or a path string starting at
    the same place wins): a path that is not a lone literal is an ordinary expression
    and the top-level rules take it (§4.1.2).
    """
    return {
        "begin": "(" + _keyword(v.http_methods) + r")(?![ \t]*:)",
        "beginCaptures": {"1": _scope("keyword.other.http-method")},
        "end": r"""(?<=["'])|(?=\S)""",
        "applyEndPatternLast": 1,
        "patterns": [{"include": "#comments"},
                     {"match": v.source_before_path(), "captures": {"1": _scope("entity.name.type")}},
                     {"include": "#path-double"}, {"include": "#path-single"}],
    }


def _declarations(v: Vocabulary) -> Rule:
    name = v.name
    head = "storage.type"
    return {"patterns": [
        {"match": rf"{WORD_START}({alternation(v.type_declarations)})[ \t]+({name})",
         "captures": {"1": _scope(head), "2": _scope("entity.name.type")}},
        {"match": rf"{WORD_START}({v.store_declaration})[ \t]+({name})(?=[ \t]*:)",
         "captures": {"1": _scope(head), "2": _scope("entity.name.type")}},
        {"match": rf"{WORD_START}({alternation(v.function_declarations)})[ \t]+({name})",
         "captures": {"1": _scope(head), "2": _scope("entity.name.function")}},
    ]}


def _repository(v: Vocabulary) -> dict[str, Rule]:
    directive = alternation(v.directives) + WORD_END + r"(?![ \t]*[:.])"
    contextual = _scope("keyword.other.contextual")
    name = v.name
    return {
        "comments": _comments(),
        "strings": {"patterns": [{"include": "#string-double"}, {"include": "#string-single"}]},
        "string-double": _string('"', "double"),
        "string-single": _string("'", "single"),
        "path-double": _string('"', "double", path_of=v),
        "path-single": _string("'", "single", path_of=v),
        "escapes": {"patterns": [
            {"name": "constant.character.escape.reqon", "match": ESCAPE},
            {"name": "invalid.illegal.unknown-escape.reqon", "match": r"\\."},
        ]},
        "placeholder": {
            "name": "meta.placeholder.reqon",
            "match": rf"(\{{)({name}(?:\.{name})*)(\}})",
            "captures": {"1": _scope("punctuation.definition.placeholder.begin"),
                         "2": _scope("variable.other.placeholder"),
                         "3": _scope("punctuation.definition.placeholder.end")},
        },
        "member-keywords": {"match": rf"^[ \t]*({alternation(v.member)})(?=[ \t]*:)",
                            "captures": {"1": contextual}},
        "directive-keywords": {"match": rf"(?:^|(?<=->|\{{))[ \t]*({directive})",
                               "captures": {"1": contextual}},
        "numbers": {"patterns": [
            {"name": "constant.numeric.duration.reqon", "match": v.duration},
            {"name": "constant.numeric.decimal.reqon", "match": v.decimal},
            {"name": "constant.numeric.integer.reqon", "match": v.integer},
        ]},
        "accessors": {"patterns": [
            {"name": "keyword.operator.spread.reqon", "match": r"\.\.\."},
            {"match": v.method_call() + WORD_END,
             "captures": {"1": _scope("punctuation.accessor"), "3": _scope("support.function.builtin")}},
            {"match": rf"(\.)[ \t]*({name})",
             "captures": {"1": _scope("punctuation.accessor"),
                          "2": _scope("variable.other.property")}},
        ]},
        "then-keywords": {
            "match": rf"{WORD_START}(then)[ \t]+({alternation(v.after_then)}){WORD_END}",
            "captures": {"1": _scope("keyword.control"), "2": contextual},
        },
        "declarations": _declarations(v),
        "keys": {"name": "variable.other.property.reqon",
                 "match": rf"{WORD_START}{name}(?=[ \t]*:)"},
        "fetch": _fetch(v),
        "builtins": {"name": "support.function.builtin.reqon",
                     "match": _keyword(v.builtins) + r"(?=[ \t]*\()"},
        "infix-keywords": {"name": "keyword.other.contextual.reqon",
                           "match": _keyword(v.infix) + v.infix_follower()},
        "constants": {"name": "constant.language.reqon", "match": _keyword(v.constants)},
        "operator-words": {"name": "keyword.operator.word.reqon",
                           "match": _keyword(v.operator_words)},
        "control-keywords": {"name": "keyword.control.reqon", "match": _keyword(v.control)},
        "operators": {"name": "keyword.operator.reqon", "match": OPERATOR},
        "punctuation": {"patterns": [
            {"name": "punctuation.section.braces.reqon", "match": r"[{}]"},
            {"name": "punctuation.section.brackets.reqon", "match": r"[\[\]]"},
            {"name": "punctuation.section.parens.reqon", "match": r"[()]"},
            {"name": "punctuation.separator.comma.reqon", "match": ","},
            {"name": "punctuation.separator.key-value.reqon", "match": ":"},
            {"name": "punctuation.accessor.reqon", "match": r"\."},
        ]},
        "identifiers": {"name": "variable.other.reqon", "match": name},
        # A character that starts no token (E107): flagged so the editor shows it.
        "invalid": {"name": "invalid.illegal.character.reqon", "match": r"\S"},
    }


def build(v: Vocabulary = VOCABULARY) -> dict[str, Any]:
    """The TextMate grammar as a JSON-ready dict."""
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "Reqon",
        "scopeName": "source.reqon",
        "fileTypes": ["vague", "reqon"],
        "comment": "Generated by editors/generate.py from grammar/reqon.lark; do not edit.",
        "patterns": [{"include": f"#{key}"} for key in _TOP_LEVEL],
        "repository": _repository(v),
    }


def render(v: Vocabulary = VOCABULARY) -> str:
    return json.dumps(build(v), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed grammar differs from a fresh one")
    args = parser.parse_args(argv)
    text = render()
    current = OUTPUT.read_text("utf-8") if OUTPUT.exists() else ""
    if args.check:
        if current != text:
            print(f"{OUTPUT} is stale: run editors/generate.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_text(text, "utf-8")
        print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
