"""Syntax errors in plain words, with recovery so one pass reports several.

Lark reports terminals such as RBRACE or __ANON_3; users should read
`expected '}' to close action FetchBooks opened at 12:3` or
`unknown word 'runn', did you mean 'run'?`. The bracket scanner here is also
what the REPL uses to decide whether an input is complete.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Lark is imported only when a file has a syntax error (see reqon/parser.py)
    import lark
    from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from reqon import ast
from reqon.diagnostics import Diagnostic, error
from reqon.lalr_driver import MAX_DEPTH

MAX_ERRORS = 20
MAX_RECOVERIES = 400
_CLOSERS = {"{": "}", "[": "]", "(": ")"}
_REGEX_NAMES = {
    "NAME": "a name", "STRING": "a string", "INT": "a number", "DECIMAL": "a number",
    "DURATION": "a duration", "COMP_OP": "a comparison operator", "SUM_OP": "'+' or '-'",
    "PRODUCT_OP": "'*', '/' or '%'", "$END": "end of file",
}
_CHAR_HINTS = {
    "!": "write 'not' for negation and '!=' for inequality",
    "&": "write 'and'", "|": "write 'or'", ";": "steps need no ';': use a line break or a comma",
    "#": "comments start with '//'",
}


@dataclass(frozen=True)
class Bracket:
    char: str
    offset: int


@dataclass(frozen=True)
class BracketScan:
    open: list[Bracket]
    too_deep_at: int | None
    unclosed: str | None  # "string" or "comment" when the text ends inside one
    unclosed_at: int = -1


def scan_brackets(text: str, stop: int | None = None) -> BracketScan:
    """Brackets still open before `stop`, skipping strings and comments as the lexer does.

    The parser uses it to name the bracket a syntax error leaves open and to
    refuse absurd nesting; the REPL uses it to decide whether input is complete.
    """
    end = len(text) if stop is None else stop
    stack: list[Bracket] = []
    too_deep: int | None = None
    i = 0
    while i < end:
        ch = text[i]
        if ch in "\"'":
            close = _string_end(text, i)
            if close is None:
                return BracketScan(stack, too_deep, "string", i)
            i = close
        elif text.startswith("//", i):
            nl = text.find("\n", i)
            i = len(text) if nl == -1 else nl
        elif text.startswith("/*", i):
            close_c = text.find("*/", i + 2)
            if close_c == -1:
                return BracketScan(stack, too_deep, "comment", i)
            i = close_c + 1
        elif ch in _CLOSERS:
            stack.append(Bracket(ch, i))
            if len(stack) > MAX_DEPTH and too_deep is None:
                too_deep = i
        elif ch in "}])" and stack and _CLOSERS[stack[-1].char] == ch:
            stack.pop()
        i += 1
    return BracketScan(stack, too_deep, None)


def _unclosed_comment(text: str) -> int | None:
    """Offset of a `/*` that is never closed (outside strings and line comments)."""
    if "/*" not in text:
        return None
    scan = scan_brackets(text)
    return scan.unclosed_at if scan.unclosed == "comment" else None


def _string_end(text: str, start: int) -> int | None:
    quote = text[start]
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            return i
        if ch == "\n":
            return None
        i += 1
    return None


def position(text: str, offset: int, file: str, length: int = 1) -> ast.Span:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return ast.Span(file, line, col, line, col + length, offset, offset + length)


def nesting_problem(text: str, file: str) -> Diagnostic | None:
    """Refuse absurd nesting before parsing, so no later recursive pass can overflow."""
    too_deep = scan_brackets(text).too_deep_at
    if too_deep is None:
        return None
    return error("E101", position(text, too_deep, file),
                 f"brackets are nested more than {MAX_DEPTH} levels deep",
                 "split the expression with 'let' steps")


class SyntaxErrorTranslator:
    """Runs the Lark parser with error recovery and turns its exceptions into diagnostics."""

    def __init__(self, parser: lark.Lark) -> None:
        from lark.lexer import PatternStr

        self._parser = parser
        self._repairs: list[tuple[int, int]] = []  # (start, end) of text to blank, found by _known_mistake
        self._patterns: dict[str, Any] = {t.name: t.pattern for t in parser.terminals}
        self._by_text = {p.value: n for n, p in self._patterns.items() if isinstance(p, PatternStr)}
        self._keywords = {n for n, p in self._patterns.items()
                          if isinstance(p, PatternStr) and p.value.isidentifier()}
        first = _first_sets(parser)  # the words that can start each rule, read off the grammar
        self._steps, self._members, self._expr = first["step"], first["member"], first["expr"]
        self._top = first["top"]
        # words that start a mission member or a step, but no top-level declaration
        self._inside_only = {self._patterns[t].value for t in (self._members | self._steps) - self._top
                             if t in self._keywords}

    def parse(self, text: str, file: str) -> tuple[Any, list[Diagnostic]]:
        comment_at = _unclosed_comment(text)
        if comment_at is not None:
            unclosed = error("E104", position(text, comment_at, file, 2), "unterminated block comment",
                             "close it with '*/'")
            _, before = self._parse(text[:comment_at], file)
            return None, [d for d in before if not d.message.startswith("unexpected end of file")] + [unclosed]
        return self._parse_repairing(text, file)

    def _parse_repairing(self, text: str, file: str) -> tuple[Any, list[Diagnostic]]:
        """Some mistakes are recognised with their fix (an unparenthesised object after
        `match`, a `where` without a guard): the text is repaired, keeping every offset,
        and parsed again, so the mistake is reported once and later errors are real."""
        explained: list[Diagnostic] = []
        for _ in range(MAX_ERRORS):
            self._repairs = []
            tree, found = self._parse(text, file)
            if not self._repairs:
                break
            explained.extend(d for d in found if d.span.start in {start for start, _ in self._repairs})
            for start, end in self._repairs:
                text = text[:start] + _blank(text[start:end]) + text[end:]
        else:
            tree, found = self._parse(text, file)  # repairs beyond the limit stay unexplained
        if not explained:
            return tree, found
        lines = {d.span.line for d in explained}
        return None, explained + [d for d in found if d.span.line not in lines]

    def _parse(self, text: str, file: str) -> tuple[Any, list[Diagnostic]]:
        from lark.exceptions import UnexpectedInput, UnexpectedToken

        self._repairs = []
        found: list[Diagnostic] = []
        state = {"recoveries": 0, "last_line": 0}

        def on_error(exc: UnexpectedInput) -> bool:
            state["recoveries"] += 1
            diag = self._translate(exc, text, file)
            if diag.span.line > state["last_line"]:
                found.append(diag)
                state["last_line"] = diag.span.line
            stop = (len(found) >= MAX_ERRORS
                    or state["recoveries"] >= MAX_RECOVERIES)
            if not stop and isinstance(exc, UnexpectedToken):
                self._repair(exc)
            return not stop

        try:
            program = self._parser.parse(text, on_error=on_error)
        except RecursionError:
            found.append(error("E101", position(text, 0, file), "the file is nested too deeply to parse",
                               "split long expressions into several 'let' steps"))
            return None, found
        except UnexpectedInput as exc:
            diag = self._translate(exc, text, file)
            if not any(d.span.line == diag.span.line for d in found):
                found.append(diag)
            return None, found
        return (None, found) if found else (program, [])

    def _repair(self, exc: UnexpectedToken) -> None:
        """Where a value is missing before a closing bracket (`let x = 1 + }`), pretend a name
        was there and keep the bracket, so the blocks around stay balanced and the next
        errors are real ones rather than echoes of this one."""
        from lark import Token
        from lark.exceptions import UnexpectedInput

        tok = exc.token
        if tok.type == "$END" or str(tok) not in ("}", "]", ")") or "NAME" not in exc.expected:
            return
        parser = exc.interactive_parser
        trial = parser.copy(deepcopy_values=False)  # the tree is discarded after an error anyway
        placeholder = Token.new_borrow_pos("NAME", "_", tok)
        try:
            trial.feed_token(placeholder)
            trial.feed_token(tok)
        except UnexpectedInput:
            return
        parser.feed_token(placeholder)
        parser.feed_token(tok)

    # ------------------------------------------------------------ translation
    def _translate(self, exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
        from lark.exceptions import UnexpectedCharacters, UnexpectedToken

        if isinstance(exc, UnexpectedCharacters):
            return self._bad_character(exc, text, file)
        if isinstance(exc, UnexpectedToken):
            return self._bad_token(exc, text, file)
        offset = len(text)
        return error("E101", position(text, offset, file), "unexpected end of file")

    def _bad_character(self, exc: UnexpectedCharacters, text: str, file: str) -> Diagnostic:
        offset = exc.pos_in_stream or 0
        ch = text[offset] if offset < len(text) else ""
        span = position(text, offset, file)
        if ch in "\"'":
            return error("E102", span, "unterminated string",
                         "strings end on the line they start; write \\n for a line break")
        shown = ch if ch.isprintable() else f"U+{ord(ch):04X}" if ch else "end of file"
        hints = (_CHAR_HINTS[ch],) if ch in _CHAR_HINTS else ()
        return error("E107", span, f"unexpected character '{shown}'", *hints)

    def _bad_token(self, exc: UnexpectedToken, text: str, file: str) -> Diagnostic:
        tok = exc.token
        expected = set(exc.expected)
        if tok.type == "$END":
            span = position(text, len(text.rstrip()), file)
            found = "end of file"
        else:
            length = max(len(str(tok)), 1)
            span = position(text, tok.start_pos or 0, file, min(length, 200))
            found = f"'{_clip(str(tok))}'"
        word = str(tok) if tok.type != "$END" and str(tok).isidentifier() else None
        if word in self._inside_only and expected <= self._top | {"$END"}:
            return error("E101", span, f"'{word}' is not allowed at top level",
                         "declare it inside a mission block")
        if word is not None:
            close = self._close_keyword(word, expected)
            if close:
                return error("E101", span, f"unknown word '{word}', did you mean '{close}'?")
        known = self._known_mistake(tok, text, file, span)
        if known is not None:
            return known
        message = f"unexpected {found}: expected {self._describe(expected)}"
        closing = self._closing_context(expected, text, tok, file)
        if closing:
            message = f"unexpected {found}: {closing}"
        return error("E101", span, message)

    def _known_mistake(self, tok: Any, text: str, file: str, span: ast.Span) -> Diagnostic | None:
        """Two mistakes of match arms explained with their fix; each records a repair."""
        if tok.type == "$END":
            return None
        at = tok.start_pos or 0
        before = text[:at].rstrip()
        if str(tok) == ">" and before.endswith(("-", "=")):  # `->` lexed as a minus: no operand came
            before = before[:-1].rstrip()
        if re.search(r"(?<![A-Za-z0-9_])where$", before) and str(tok) in (">", "->", "=>", ","):
            start = len(before) - len("where")
            self._repairs.append((start, len(before)))
            return error("E101", position(text, start, file, len("where")), "'where' without a guard",
                         "write the condition after 'where', or remove 'where'")
        opener = scan_brackets(text, at).open
        if not opener or opener[-1].char != "{":
            return None
        brace = opener[-1].offset
        head = text[:brace].rstrip()
        word = next((w for w in ("match", "validate") if head.endswith(w)), None)
        close = _matching_brace(text, brace)
        if word is None or close is None or "\n" in text[brace:close]:
            return None
        # An object literal shows itself by a key: its ':' after `match` (arms have none), its
        # first word after `validate` (constraints start with `assume`).
        if str(tok) != ":" and not (word == "validate" and not text[brace + 1:at].strip()):
            return None
        self._repairs.append((brace, close + 1))
        what = "the arms" if word == "match" else "the constraints"
        return error("E101", position(text, brace, file, close + 1 - brace),
                     f"a '{{' right after '{word}' opens {what}, not an object",
                     f"parenthesise an object: {word} ({text[brace:close + 1]}) {{ … }}")

    def _close_keyword(self, word: str, expected: set[str]) -> str | None:
        candidates = [self._patterns[n].value for n in expected if n in self._keywords]
        if word in candidates:
            return None
        matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
        return matches[0] if matches else None

    def _closing_context(self, expected: set[str], text: str, tok: Any, file: str) -> str | None:
        stop = len(text) if tok.type == "$END" else (tok.start_pos or 0)
        stack = scan_brackets(text, stop).open
        if not stack:
            return None
        opener = stack[-1]
        closer = _CLOSERS[opener.char]
        if self._by_text.get(closer) not in expected:
            return None
        where = position(text, opener.offset, file)
        return f"expected '{closer}' to close {_describe_opener(text, opener)} opened at {where.line}:{where.column}"

    def _describe(self, expected: set[str]) -> str:
        labels: list[str] = []
        rest = set(expected)
        groups = ((self._steps, "a step"), (self._members, "a mission member"),
                  (self._expr, "an expression"))
        if "NAME" in rest and len(rest & self._keywords) > 30:
            rest -= self._keywords | {"NAME", "STRING"}
            labels.append("a name")
        for group, label in groups:
            # Lark leaves keywords out of `expected` where the contextual lexer would not
            # offer them, so an expression position is judged by its punctuation and literals.
            core = (group - self._keywords) or group
            if len(rest & core) >= max(3, len(core) * 2 // 3):
                rest -= group
                labels.append(label)
        labels.extend(sorted(self._human(n) for n in rest))
        if not labels:
            return "something else"
        if len(labels) > 8:
            labels = labels[:8] + ["…"]
        return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]

    def _human(self, name: str) -> str:
        from lark.lexer import PatternStr

        if name in _REGEX_NAMES:
            return _REGEX_NAMES[name]
        pattern = self._patterns.get(name)
        if isinstance(pattern, PatternStr):
            return f"'{pattern.value}'"
        return name.lower()


def _first_sets(parser: lark.Lark) -> dict[str, set[str]]:
    """FIRST sets of the grammar's rules (terminal names), by the textbook fixpoint."""
    rules = parser.rules
    first: dict[str, set[str]] = {r.origin.name: set() for r in rules}
    nullable = {r.origin.name for r in rules if not r.expansion}
    changed = True
    while changed:
        changed = False
        for rule in rules:
            target = first[rule.origin.name]
            before = len(target)
            for sym in rule.expansion:
                if sym.is_term:
                    target.add(sym.name)
                    break
                target |= first.get(sym.name, set())
                if sym.name not in nullable:
                    break
            else:
                if rule.origin.name not in nullable:
                    nullable.add(rule.origin.name)
                    changed = True
            changed = changed or len(target) != before
    return first


def _blank(text: str) -> str:
    """A same-length stand-in that parses as a name (or as nothing, for `where`)."""
    return " " * len(text) if text == "where" else "_" * len(text)


def _matching_brace(text: str, start: int) -> int | None:
    """Offset of the `}` closing the `{` at `start`, on the same line, or None."""
    end = text.find("\n", start)
    line_end = len(text) if end == -1 else end
    depth = 0
    for i in range(start, line_end):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _describe_opener(text: str, opener: Bracket) -> str:
    line_start = text.rfind("\n", 0, opener.offset) + 1
    words = text[line_start:opener.offset].split()
    if not words:
        return f"'{opener.char}'"
    if words[0] in ("mission", "action", "source", "schema", "transform") and len(words) > 1:
        return f"{words[0]} {words[1].rstrip(':')}"
    if words[0].isidentifier():
        return f"the '{words[0]}' {'block' if opener.char == '{' else 'list'}"
    return f"'{opener.char}'"


def _clip(text: str) -> str:
    return text if len(text) <= 30 else text[:27] + "..."
