"""The LALR tables of `grammar/reqon.lark` as plain data, cached between processes.

Lark needs about 0.3 s to analyse the grammar, and even loading its own cache costs
Lark's import plus about 0.1 s of unpickling and regex compiling, most of a one-GET
mission's start-up. The fast driver (`reqon.lalr_driver`) needs much less: the
action table, which keyword and punctuation terminals exist, and how each rule filters
its children. Those are plain dicts, tuples and strings, so `marshal` reads them in
about a millisecond, and valid input never imports Lark at all.

The cache file lives in the user cache directory (`$XDG_CACHE_HOME/reqon`, else
`~/.cache/reqon`) and its name and content carry a hash of the grammar text, the Lark
version, this format and the Python version (marshal's format is per version). A file
that is missing, stale, unreadable or corrupt is rebuilt from the grammar with Lark and
written atomically; when the directory is not writable the tables are simply kept in
memory. Tables of other grammars are removed once they are 30 days old. The grammar stays the only source: nothing here is written by hand.
"""
from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = "reqon-lalr-tables-1"
_KEEP_DAYS = 30
_PUNCTUATION = ["...", "->", "=>", "??", "==", "!=", "<=", ">=", "{", "}", "[", "]", "(", ")", ",", ":",
                ".", "=", "<", ">", "+", "-", "*", "/", "%", "?"]
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# One rule as the driver needs it: (expansion length, origin name, tree name (alias or origin),
# keep_all_tokens, expand1 (`?rule` without alias), empty_indices, and per symbol of the
# expansion (is_terminal, name, filter_out)).
Rule = tuple[int, str, str, bool, bool, tuple[bool, ...], tuple[tuple[bool, str, bool], ...]]


def cache_dir() -> Path:
    """The XDG user cache directory of reqon."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "reqon"


def lark_version() -> str:
    """Lark's version, read from its package without importing it (the import is what we avoid)."""
    spec = importlib.util.find_spec("lark")
    if spec is None or spec.origin is None:
        return "none"
    try:
        found = re.search(r"""__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)""", Path(spec.origin).read_text("utf-8"))
    except OSError:
        return "unknown"
    return found.group(1) if found else "unknown"


def cache_key(grammar: str) -> str:
    parts = [FORMAT, grammar, lark_version(), "%d.%d" % sys.version_info[:2]]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def cache_file(grammar: str) -> Path:
    return cache_dir() / f"lalr-{cache_key(grammar)[:32]}.marshal"


def load(grammar: str, build_lark: Callable[[], Any]) -> dict[str, Any]:
    """The tables for `grammar`: from the cache when it is valid, else built and cached."""
    key = cache_key(grammar)
    path = cache_dir() / f"lalr-{key[:32]}.marshal"
    tables = _read(path, key)
    if tables is None:
        tables = from_lark(build_lark())
        _write(path, key, tables)
    return tables


def _read(path: Path, key: str) -> dict[str, Any] | None:
    try:
        payload = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return None  # missing, unreadable or not marshal data: rebuild
    if not isinstance(payload, dict) or payload.get("key") != key or not _well_formed(payload.get("tables")):
        return None
    tables: dict[str, Any] = payload["tables"]
    return tables


def _well_formed(tables: Any) -> bool:
    expected = {"states": dict, "start": int, "end": int, "keywords": dict, "punct": dict,
                "anonymous": frozenset, "rules": tuple}
    return isinstance(tables, dict) and all(isinstance(tables.get(k), t) for k, t in expected.items())


def _write(path: Path, key: str, tables: dict[str, Any]) -> None:
    """Atomically (temporary file, rename), so a concurrent reader sees the old file or the new one.

    Tables of other grammars stay (two installed versions would otherwise evict each other
    at every start) unless they were written more than `_KEEP_DAYS` ago. Any failure just
    leaves the cache alone."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lalr-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps({"key": key, "tables": tables}))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        expired = time.time() - _KEEP_DAYS * 86400
        for old in path.parent.glob("lalr-*.marshal"):
            if old != path and old.stat().st_mtime < expired:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def from_lark(parser: Any) -> dict[str, Any]:
    """Read the plain tables off a Lark LALR parser built from the grammar."""
    from lark.lexer import PatternStr
    from lark.parsers.lalr_analysis import Shift

    table = parser.parser.parser.parser.parse_table
    rules = list(parser.rules)
    index = {id(rule): i for i, rule in enumerate(rules)}
    # a shift is the next state (>= 0), a reduction is -(rule index + 1)
    states = {state: {term: (arg if action is Shift else -index[id(arg)] - 1) for term, (action, arg) in acts.items()}
              for state, acts in table.states.items()}
    keywords = {p.value: t.name for t in parser.terminals
                if isinstance((p := t.pattern), PatternStr) and _WORD.fullmatch(p.value)}
    return {
        "states": states,
        "start": table.start_states["start"],
        "end": table.end_states["start"],
        "keywords": keywords,
        "punct": _punctuation_terminals(parser, PatternStr),
        "anonymous": _filtered_everywhere(rules),
        "rules": tuple(_rule(rule) for rule in rules),
    }


def _rule(rule: Any) -> Rule:
    options = rule.options
    symbols = tuple((bool(s.is_term), str(s.name), bool(getattr(s, "filter_out", False))) for s in rule.expansion)
    return (len(rule.expansion), str(rule.origin.name), str(rule.alias or rule.origin.name),
            bool(options.keep_all_tokens), bool(options.expand1 and not rule.alias),
            tuple(bool(b) for b in (options.empty_indices or ())), symbols)


def _filtered_everywhere(rules: list[Any]) -> frozenset[str]:
    """Terminals that no rule keeps (braces, commas, arrows…): the driver skips building them."""
    kept = {sym.name for rule in rules for sym in rule.expansion
            if sym.is_term and (not getattr(sym, "filter_out", False) or rule.options.keep_all_tokens)}
    every = {sym.name for rule in rules for sym in rule.expansion if sym.is_term}
    return frozenset(every - kept)


def _punctuation_terminals(parser: Any, pattern_str: Any) -> dict[str, str | tuple[str, ...]]:
    """Each operator text with the terminals that can lex it (`<` is COMP_OP or LESSTHAN)."""
    found: dict[str, list[str]] = {p: [] for p in _PUNCTUATION}
    for terminal in parser.terminals:
        pattern = terminal.pattern
        for text in _PUNCTUATION:
            if isinstance(pattern, pattern_str):
                if pattern.value == text:
                    found[text].append(terminal.name)
            elif re.fullmatch(pattern.to_regexp(), text):
                found[text].append(terminal.name)
    return {text: names[0] if len(names) == 1 else tuple(names) for text, names in found.items() if names}
