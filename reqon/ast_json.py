"""The documented JSON shape of the AST (`reqon parse --json`), and its inverse.

Every node becomes an object with `type` (the node class), `line`, `column`,
`endLine`, `endColumn`, then its fields in declaration order; spans of names
(`Ident`) are kept so tools can point at them. `from_json` rebuilds the exact
AST, which is what the round-trip tests rely on.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from reqon import ast

_NODE_TYPES: dict[str, type] = {
    name: cls for name, cls in vars(ast).items()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls) and issubclass(cls, ast.Node)
}
_SPAN_FIELDS = {"key_span", "target_span", "schema_span", "text_span"}


def to_json(value: Any) -> Any:
    if isinstance(value, ast.Node):
        return _node(value)
    if isinstance(value, ast.Span):  # a named tuple: before the plain tuples
        return _span(value)
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return value


def _node(node: ast.Node) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(node).__name__}
    out.update(_span(node.span))
    for f in dataclasses.fields(node):
        if f.name == "span":
            continue
        out[f.name] = to_json(getattr(node, f.name))
    return out


def _span(span: ast.Span) -> dict[str, Any]:
    return {"file": span.file, "line": span.line, "column": span.column, "endLine": span.end_line,
            "endColumn": span.end_column, "start": span.start, "end": span.end}


def from_json(data: Any) -> Any:
    if isinstance(data, list):
        return tuple(from_json(v) for v in data)
    if not isinstance(data, dict):
        return data
    cls = _NODE_TYPES[data["type"]]
    kwargs: dict[str, Any] = {"span": _read_span(data)}
    for f in dataclasses.fields(cls):
        if f.name == "span" or f.name not in data:
            continue
        raw = data[f.name]
        kwargs[f.name] = _read_span(raw) if f.name in _SPAN_FIELDS and raw is not None else from_json(raw)
    return cls(**kwargs)


def _read_span(data: dict[str, Any]) -> ast.Span:
    return ast.Span(data["file"], data["line"], data["column"], data["endLine"], data["endColumn"],
                    data["start"], data["end"])


def render_tree(node: ast.Node, indent: int = 0) -> str:
    """The indented text form of `reqon parse`: one node per line with its position."""
    lines: list[str] = []
    _render(node, indent, lines, label=None)
    return "\n".join(lines)


def _render(value: Any, depth: int, lines: list[str], label: str | None) -> None:
    pad = "  " * depth
    prefix = f"{label}: " if label else ""
    if isinstance(value, ast.Node):
        scalars = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)
                   if f.name != "span" and not _is_nested(getattr(value, f.name))
                   and f.name not in _SPAN_FIELDS}
        shown = " ".join(f"{k}={v!r}" for k, v in scalars.items())
        lines.append(f"{pad}{prefix}{type(value).__name__} @{value.span.line}:{value.span.column} {shown}".rstrip())
        for f in dataclasses.fields(value):
            child = getattr(value, f.name)
            if f.name != "span" and _is_nested(child):
                _render(child, depth + 1, lines, f.name)
    elif isinstance(value, tuple):
        lines.append(f"{pad}{prefix}[{len(value)}]")
        for item in value:
            _render(item, depth + 1, lines, None)


def _is_nested(value: Any) -> bool:
    return isinstance(value, ast.Node) or (isinstance(value, tuple) and bool(value)
                                           and isinstance(value[0], ast.Node))
