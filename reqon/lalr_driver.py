"""A lean LALR(1) driver over the tables Lark builds from `grammar/reqon.lark`.

It reads the plain tables of `reqon.lalr_tables` (cached between processes), so valid
input is parsed without importing Lark.

Lark's own parse loop builds a parse tree, propagates positions through a
chain of wrappers and then transforms the tree: three passes over every node.
This driver runs the same tables in one pass: a single-regex lexer that asks
the current parser state which keyword or operator a word is (exactly what
Lark's contextual lexer does, with NAME acceptable everywhere), and reductions
that call the AST builder directly with spans computed from the children.

It only handles valid input. Any lexical or syntax error makes `parse` return
None and the caller re-parses with Lark itself, whose exceptions carry what
the diagnostics need; so error messages never depend on this module, and a
test checks that both paths build identical ASTs.
"""
from __future__ import annotations

import re
from typing import Any

from reqon.lalr_tables import _PUNCTUATION, Rule

MAX_DEPTH = 200  # brackets nested deeper are an error (E-code in syntax_errors); passes over the AST recurse

_LEXER = re.compile(  # whitespace and comments, then one token (or the end of the text)
    r"(?:[ \t\r\n\f]+|//[^\n]*|/\*[\s\S]*?\*/)*"
    r"(?:(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<DURATION>[0-9]+(?:ms|s|m|h|d)(?![A-Za-z0-9_]))"
    r"|(?P<DECIMAL>[0-9]+\.[0-9]+)"
    r"|(?P<INT>[0-9]+)"
    r"|(?P<STRING>\"(?:[^\"\\\n\r]|\\.)*\"|'(?:[^'\\\n\r]|\\.)*')"
    r"|(?P<punct>" + "|".join(re.escape(p) for p in _PUNCTUATION) + ")"
    r"|$)"
)


class _Token:
    """What the AST builder reads of a token (the fields of Lark's Token), at a third of
    the cost of creating a Lark Token, which matters at one per word of the file."""

    __slots__ = ("type", "value", "start_pos", "line", "column", "end_line", "end_column", "end_pos")

    def __init__(self, type: str, value: str, start_pos: int, line: int, column: int, end_pos: int) -> None:
        self.type = type
        self.value = value
        self.start_pos = start_pos
        self.line = self.end_line = line
        self.column = column
        self.end_column = column + len(value)
        self.end_pos = end_pos

    def __str__(self) -> str:
        return self.value


_ANONYMOUS = object()  # the value of a token that every rule filters out


class _Reject(Exception):
    """The fast path gives up; the caller falls back to Lark."""


class FastParser:
    def __init__(self, tables: dict[str, Any], builder: Any) -> None:
        plans = [_plan(rule, builder) for rule in tables["rules"]]
        # one table: a shift is the next state (an int), a reduction its plan (a tuple)
        self._states: dict[int, dict[str, Any]] = {
            state: {term: (arg if arg >= 0 else plans[-arg - 1]) for term, arg in actions.items()}
            for state, actions in tables["states"].items()}
        self._start: int = tables["start"]
        self._end: int = tables["end"]
        self._keywords: dict[str, str] = tables["keywords"]
        self._punct: dict[str, str | tuple[str, ...]] = tables["punct"]
        self._unit_chains: dict[tuple[int, int, str], int] = {}
        self._anonymous: frozenset[str] = tables["anonymous"]

    def _unit_chain(self, below: int, top: int, ttype: str) -> int:
        """Where a run of `?rule` reductions on lookahead `ttype` leaves the top of the stack.

        Expression precedence levels make every literal climb a dozen such rules; each
        one only swaps the top state (the state below stays), so the whole climb depends
        on (below, top, lookahead) alone and is computed once per parse table triple.
        """
        states = self._states
        while top != self._end:
            step = states[top][ttype]
            if step.__class__ is int or not step[2]:
                break
            top = states[below][step[1]]
        return top

    def parse(self, text: str) -> Any:
        try:
            return self._parse(text)
        except (_Reject, KeyError, IndexError):
            return None

    def _parse(self, text: str) -> Any:
        states, keywords, punct, unit_chains = self._states, self._keywords, self._punct, self._unit_chains
        anonymous = self._anonymous
        state_stack = [self._start]
        values: list[Any] = []
        spans: list[Any] = []
        pos, line, line_start, size = 0, 1, 0, len(text)
        depth = 0
        match = _LEXER.match
        push_state, push_value, push_span = state_stack.append, values.append, spans.append
        while True:
            m = match(text, pos) if pos < size else None
            kind = m.lastgroup if m is not None else None
            if m is not None and kind is not None:
                value = m.group(kind)
                end = m.end()
                start = end - len(value)
                if start != pos:  # skipped whitespace or comments: keep line numbers right
                    newlines = text.count("\n", pos, start)
                    if newlines:
                        line += newlines
                        line_start = text.rindex("\n", pos, start) + 1
                    pos = start
                actions = states[state_stack[-1]]
                if kind == "word":
                    ttype = keywords.get(value)
                    if ttype is None or ttype not in actions:
                        ttype = "NAME"
                elif kind == "punct":
                    candidates = punct[value]
                    ttype = candidates if isinstance(candidates, str) else _choose(candidates, actions)
                    if value in "{[(":
                        depth += 1
                        if depth > MAX_DEPTH:  # the slow path reports it; later passes recurse
                            raise _Reject()
                    elif value in "}])":
                        depth -= 1
                else:
                    ttype = kind  # type: ignore[assignment]
                column = pos - line_start + 1
                # anonymous punctuation never reaches the AST builder: only its position counts
                token = _Token(ttype, value, pos, line, column, end) if ttype not in anonymous else _ANONYMOUS
                span = (pos, line, column, end, line, column + len(value))
                pos = end
            elif m is None and pos < size:
                raise _Reject()  # a character that starts no token
            else:
                token, span, ttype = None, None, "$END"
                actions = states[state_stack[-1]]
            while True:
                step = actions[ttype]
                if step.__class__ is int:
                    if ttype == "$END":
                        raise _Reject()
                    push_state(step)
                    push_value(token)
                    push_span(span)
                    break
                n, origin, unit, reduce = step
                if unit:  # `?rule` with one child: the value and span stay, only the state moves
                    key = (state_stack[-2], state_stack[-1], ttype)
                    top = unit_chains.get(key)
                    if top is None:
                        top = unit_chains[key] = self._unit_chain(*key)
                    state_stack[-1] = top
                    if token is None and top == self._end:
                        return values[-1]
                    actions = states[top]
                    continue
                if n:
                    children = values[-n:]
                    child_spans = spans[-n:]
                    del state_stack[-n:], values[-n:], spans[-n:]
                    first, last = child_spans[0], child_spans[-1]
                    if first is None or last is None:
                        merged = _merge(child_spans)
                    elif first is last:
                        merged = first
                    else:
                        merged = (first[0], first[1], first[2], last[3], last[4], last[5])
                else:
                    children, merged = [], None
                values.append(reduce(children, merged))
                spans.append(merged)
                state_stack.append(states[state_stack[-1]][origin])
                if token is None and state_stack[-1] == self._end:
                    return values[-1]
                actions = states[state_stack[-1]]


def _merge(spans: list[Any]) -> Any:
    first = last = None
    for s in spans:
        if s is not None:
            first = s
            break
    for s in reversed(spans):
        if s is not None:
            last = s
            break
    if first is None or last is None:
        return None
    if first is last:
        return first
    return (first[0], first[1], first[2], last[3], last[4], last[5])


def _choose(candidates: tuple[str, ...], actions: dict[str, Any]) -> str:
    for name in candidates:
        if name in actions:
            return name
    return candidates[0]


def _plan(rule: Rule, builder: Any) -> tuple[int, str, bool, Any]:
    """How one reduction builds its value: Lark's child filter, `?rule` and placeholder rules."""
    size, origin, name, keep_all, expand1, empty, expansion = rule
    if empty:
        bits = "".join(str(int(b)) for b in empty)
        nones = [len(ones) for ones in bits.split("0")]
    else:
        nones = [0] * (size + 1)
    include: list[tuple[int, bool, int]] = []
    pending = 0
    for i, (is_term, sym_name, filter_out) in enumerate(expansion):
        pending += nones[i]
        if keep_all or not (is_term and filter_out):
            include.append((i, not is_term and sym_name.startswith("_"), pending))
            pending = 0
    trailing = pending + nones[size]
    inline = origin.startswith("_")
    method = None if inline else getattr(builder, name, None)
    if method is None and not inline and not expand1:
        raise LookupError(f"the AST builder has no method for rule {name}")
    plain = not trailing and all(not splice and not add for _, splice, add in include) and \
        len(include) == size
    picks = None if trailing or any(splice or add for _, splice, add in include) else \
        tuple(i for i, _, _ in include)

    def select(children: list[Any]) -> list[Any]:
        """Lark's child filter: drop anonymous tokens, splice `_rule`s, add `[x]` placeholders."""
        filtered: list[Any] = []
        for i, splice, add in include:
            if add:
                filtered.extend([None] * add)
            if splice and not filtered:
                filtered = children[i]  # reuse the list of a left-recursive `_rule`: no O(n²) copying
            elif splice:
                filtered.extend(children[i])
            else:
                filtered.append(children[i])
        if trailing:
            filtered.extend([None] * trailing)
        return filtered

    def reduce(children: list[Any], span: Any) -> Any:
        if plain:
            filtered = children
        elif picks is not None:
            filtered = [children[i] for i in picks]
        else:
            filtered = select(children)
        if inline:
            return filtered
        if expand1 and len(filtered) == 1:
            return filtered[0]
        assert method is not None  # checked when the plan was made
        return method(span, filtered)

    unit = size == 1 and plain and expand1
    return size, origin, unit, reduce
