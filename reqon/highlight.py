"""Syntax highlighting of Reqon source for Pygments (pygmentize, Sphinx, MkDocs, the REPL).

`ReqonLexer` is registered through the `pygments.lexers` entry point (alias `reqon`).
Nothing here lists keywords by hand: `VOCABULARY` reads them from `grammar/reqon.lark`
and the built-in function names from `reqon.builtins.BUILTINS`, and
`editors/generate.py` builds the VS Code TextMate grammar from the same `VOCABULARY`,
so both highlighters change when the grammar does.

The lexer is a flat set of regular expressions, not a parser, so contextual keywords
(§1.5.3) are recognised by the text around them, the same way in both highlighters:

* a mission member or action setting word (`maxConcurrency:`) at the start of a line;
* a flow directive (`skip`, `retry`, ...) at the start of a line, after `->` or `{`,
  and `retry`/`continue` after `then`;
* every other contextual word (`from`, `to`, `as`, `parallel`, `every`, `else`, ...)
  when an operand follows it on the same line: a quote, `{`, `(`, a number or a word
  that is not reserved, which a variable of that name can never be followed by.

Any word written after `.` or before `:` is a field name, never a keyword (§1.5.2),
except a built-in called method-style (`.filter(`, §5.8). A name between an HTTP method
and a string is the source (`get Xero "/x"`, §4.1).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pygments.lexer import RegexLexer, bygroups, default, include
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)
from pygments.token import _TokenType as TokenType

from reqon import grammar
from reqon.builtins import BUILTINS

__all__ = [
    "ESCAPE", "OPERATOR", "VOCABULARY", "WORD_END", "WORD_START", "ReqonLexer", "Vocabulary",
    "alternation",
]

WORD_START = r"(?<![A-Za-z0-9_])"
WORD_END = r"(?![A-Za-z0-9_])"
# The escapes of §1.6.1; the grammar's STRING terminal accepts any `\x` and leaves
# the check (E103) to the parser, so the list lives here.
ESCAPE = r"""\\(?:["'\\/nrtbf]|u\{[0-9A-Fa-f]{1,6}\}|u[0-9A-Fa-f]{4})"""
OPERATOR = r"\.\.\.|->|=>|\?\?|==|!=|<=|>=|[=<>+\-*/%?]"


def alternation(words: Iterable[str]) -> str:
    """A non-capturing group matching any of `words`, in a stable order for diffs."""
    return "(?:" + "|".join(re.escape(w) for w in sorted(words)) + ")"


def _keyword(words: Iterable[str]) -> str:
    return WORD_START + alternation(words) + WORD_END


@functools.cache
def _keyword_terminals() -> dict[str, str]:
    """Terminal name -> keyword text, for every `NAME: "word"` line of the grammar."""
    return dict(re.findall(r'^([A-Z]+):\s*"([A-Za-z_]+)"\s*$', grammar.grammar_text(), re.M))


def _rule_keywords(*rules: str) -> frozenset[str]:
    """Keywords a grammar rule mentions, as quoted literals or keyword terminals."""
    found: set[str] = set()
    for rule in rules:
        body = re.search(rf"^[!?]?{rule}:(.*?)(?=^\S)", grammar.grammar_text(), re.M | re.S)
        if body is None:
            raise LookupError(f"grammar has no rule {rule!r}")
        found.update(re.findall(r'"([A-Za-z_]+)"', body.group(1)))
        terminals = _keyword_terminals()
        found.update(terminals[t] for t in re.findall(r"\b[A-Z]+\b", body.group(1)) if t in terminals)
    return frozenset(found) & grammar.all_keywords()


def _rule_head(rule: str) -> str:
    """The keyword a declaration rule starts with (`mission: "mission" NAME ...`)."""
    body = re.search(rf'^{rule}:\s*"([A-Za-z_]+)"', grammar.grammar_text(), re.M)
    if body is None:
        raise LookupError(f"grammar rule {rule!r} does not start with a keyword")
    return body.group(1)


def _terminal_pattern(terminal: str) -> str:
    """The regular expression of a `TERMINAL: /.../` line, shared by both highlighters."""
    found = re.search(rf"^{terminal}(?:\.\d+)?:\s*/(.*)/\s*$", grammar.grammar_text(), re.M)
    if found is None:
        raise LookupError(f"grammar has no regular-expression terminal {terminal!r}")
    return found.group(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Vocabulary:
    """Every word and literal shape the highlighters tell apart, grouped by role.

    The reserved words split into `control`, `http_methods`, `constants` and
    `operator_words` (the word operators of expressions); the contextual keywords into `member`, `directives`,
    `after_then` and `infix` (see the module docstring for where each acts as a
    keyword). Declaration heads stay in `control` too, for a head without a name.
    """

    control: tuple[str, ...]
    http_methods: tuple[str, ...]
    constants: tuple[str, ...]
    operator_words: tuple[str, ...]
    type_declarations: tuple[str, ...]
    store_declaration: str
    function_declarations: tuple[str, ...]
    member: tuple[str, ...]
    directives: tuple[str, ...]
    after_then: tuple[str, ...]
    infix: tuple[str, ...]
    builtins: tuple[str, ...]
    methods: tuple[str, ...]
    name: str
    integer: str
    decimal: str
    duration: str

    @classmethod
    def from_grammar(cls) -> Vocabulary:
        reserved = grammar.reserved_words()
        contextual = grammar.contextual_keywords()
        methods = grammar.http_methods()
        constants = _rule_keywords("literal") & reserved
        operators = _rule_keywords("or_expr", "and_expr", "not_expr", "comparison")
        member = _rule_keywords("setting", "action_setting", "schedule", "sched_member") & contextual
        directives = _rule_keywords("directive") & contextual
        after_then = _rule_keywords("jump_then") & contextual
        return cls(
            control=tuple(sorted(reserved - methods - constants - operators)),
            http_methods=tuple(sorted(methods)),
            constants=tuple(sorted(constants)),
            operator_words=tuple(sorted(operators)),
            type_declarations=tuple(sorted(_rule_head(r) for r in ("mission", "source", "schema"))),
            store_declaration=_rule_head("store_decl"),
            function_declarations=tuple(sorted(_rule_head(r) for r in ("transform", "action"))),
            member=tuple(sorted(member)),
            directives=tuple(sorted(directives)),
            after_then=tuple(sorted(after_then)),
            infix=tuple(sorted(contextual - member - directives - after_then)),
            builtins=tuple(sorted(BUILTINS)),
            methods=tuple(sorted(set(BUILTINS) | set(grammar.METHOD_ALIASES))),
            name=_terminal_pattern("NAME"),
            integer=_terminal_pattern("INT"),
            decimal=_terminal_pattern("DECIMAL"),
            duration=_terminal_pattern("DURATION"),
        )

    @property
    def reserved(self) -> frozenset[str]:
        return frozenset(self.control + self.http_methods + self.constants + self.operator_words)

    @property
    def contextual(self) -> frozenset[str]:
        return frozenset(self.member + self.directives + self.after_then + self.infix)

    def path_opening(self, quote: str) -> str:
        """The quote opening a fetch path: a whole literal that no operator continues.

        `get "/a/{id}"` is a path with placeholders; in `get "/a/" + id` the literal is
        part of an ordinary expression and its braces mean nothing (§4.1.2).
        """
        continued = rf"[-+*%?<>=!.\[]|/(?![/*])|{_keyword(self.operator_words)}"
        return rf"{quote}(?=(?:[^{quote}\\\n]|\\.)*{quote}(?![ \t]*(?:{continued})))"

    def infix_follower(self) -> str:
        """Lookahead for an operand on the same line: what makes an infix word a keyword."""
        return rf"""(?=[ \t]*["'{{(]|[ \t]+(?!{_keyword(self.reserved)})[A-Za-z0-9_]|[ \t]+\.[A-Za-z_])"""

    def source_before_path(self) -> str:
        """The source named between a method and a string path (`get Xero "/x"`, §4.1)."""
        return rf"""({self.name})(?=[ \t]+["'])"""

    def method_call(self) -> str:
        """`.filter(` in `xs.filter(.price > 10)`: a built-in called method-style (§5.8)."""
        return rf"(\.)([ \t]*)({alternation(self.methods)})(?=[ \t]*\()"


VOCABULARY = Vocabulary.from_grammar()

Rule = tuple[Any, ...]


def _string_state(quote: str, token: TokenType, *, placeholders: bool) -> list[Rule]:
    """A string literal; a raw line break ends it (E102) rather than running on."""
    rules: list[Rule] = [(quote, token, "#pop"), (ESCAPE, String.Escape)]
    if placeholders:
        name = VOCABULARY.name
        rules.append((rf"\{{{name}(?:\.{name})*\}}", String.Interpol))
    rules += [(rf"[^{quote}\\\n{{]+", token), (r"[\\{]", token), (r"\n", Whitespace, "#pop")]
    return rules


def _root(v: Vocabulary) -> list[Rule]:
    """Order matters as in the TextMate grammar: field names before keywords."""
    directive = alternation(v.directives) + WORD_END + r"(?![ \t]*[:.])"
    return [
        (rf"^([ \t]*)({alternation(v.member)})(?=[ \t]*:)", bygroups(Whitespace, Keyword.Pseudo)),
        (rf"^([ \t]*)({directive})", bygroups(Whitespace, Keyword.Pseudo)),
        (r"\n|[ \t\r\f]+", Whitespace),
        include("comments"),
        ('"', String.Double, "string-double"),
        ("'", String.Single, "string-single"),
        (v.duration, Number.Other),
        (v.decimal, Number.Float),
        (v.integer, Number.Integer),
        (r"\.\.\.", Operator),
        (v.method_call() + WORD_END, bygroups(Punctuation, Whitespace, Name.Builtin)),
        (rf"(\.)([ \t]*)({v.name})", bygroups(Punctuation, Whitespace, Name.Attribute)),
        (rf"(->)([ \t]*)({directive})", bygroups(Operator, Whitespace, Keyword.Pseudo)),
        (rf"(\{{)([ \t]*)({directive})", bygroups(Punctuation, Whitespace, Keyword.Pseudo)),
        (rf"{WORD_START}(then)([ \t]+)({alternation(v.after_then)}){WORD_END}",
         bygroups(Keyword, Whitespace, Keyword.Pseudo)),
        (rf"{WORD_START}({alternation(v.type_declarations)})([ \t]+)({v.name})",
         bygroups(Keyword.Declaration, Whitespace, Name.Class)),
        (rf"{WORD_START}({v.store_declaration})([ \t]+)({v.name})(?=[ \t]*:)",
         bygroups(Keyword.Declaration, Whitespace, Name.Class)),
        (rf"{WORD_START}({alternation(v.function_declarations)})([ \t]+)({v.name})",
         bygroups(Keyword.Declaration, Whitespace, Name.Function)),
        (rf"{WORD_START}{v.name}(?=[ \t]*:)", Name.Attribute),
        (_keyword(v.http_methods) + r"(?![ \t]*:)", Keyword, "fetch-path"),
        (_keyword(v.builtins) + r"(?=[ \t]*\()", Name.Builtin),
        (_keyword(v.infix) + v.infix_follower(), Keyword.Pseudo),
        (_keyword(v.constants), Name.Constant),
        (_keyword(v.operator_words), Operator.Word),
        (_keyword(v.control), Keyword),
        (v.name, Name.Variable),
        (OPERATOR, Operator),
        (r"[{}\[\](),:.]", Punctuation),
        (r".", Text),  # E107 territory: shown plainly, the checker reports it
    ]


class ReqonLexer(RegexLexer):
    """Pygments lexer for Reqon missions (`.vague`, `.reqon`)."""

    name = "Reqon"
    aliases = ["reqon", "vague"]
    filenames = ["*.vague", "*.reqon"]
    mimetypes = ["text/x-reqon"]

    tokens = {
        "root": _root(VOCABULARY),
        "comments": [
            (r"//[^\n]*", Comment.Single),
            (r"/\*", Comment.Multiline, "block-comment"),
        ],
        "block-comment": [
            (r"[^*]+", Comment.Multiline),
            (r"\*/", Comment.Multiline, "#pop"),
            (r"\*", Comment.Multiline),
        ],
        # After an HTTP method: a string literal here is a fetch path (§4.1.2).
        "fetch-path": [
            (r"\s+", Whitespace),
            include("comments"),
            (VOCABULARY.source_before_path(), Name.Class),
            (VOCABULARY.path_opening('"'), String.Double, ("#pop", "path-double")),
            (VOCABULARY.path_opening("'"), String.Single, ("#pop", "path-single")),
            default("#pop"),
        ],
        "string-double": _string_state('"', String.Double, placeholders=False),
        "string-single": _string_state("'", String.Single, placeholders=False),
        "path-double": _string_state('"', String.Double, placeholders=True),
        "path-single": _string_state("'", String.Single, placeholders=True),
    }
