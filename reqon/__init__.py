"""Reqon: an interpreter for the Reqon mission language (.vague files).

The library comes first and the CLI is a thin layer over it. The functions
here import their modules on first use, so that `import reqon` (and with it
`reqon --version`) stays fast.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["ReqonSyntaxError", "__version__", "check", "parse"]

if TYPE_CHECKING:
    from reqon.ast import Program
    from reqon.diagnostics import Diagnostic


def parse(source: str, path: str | None = None) -> Program:
    """Parse mission source text into the typed AST; raises ReqonSyntaxError with every diagnostic."""
    from reqon.parser import parse as parse_source

    return parse_source(source, path)


def check(source: str | None = None, *, path: str | None = None) -> list[Diagnostic]:
    """Every diagnostic (syntax and semantic) of source text, a file or a multi-file directory."""
    from reqon.checker import check_loaded
    from reqon.loader import load_path, load_text

    if (source is None) == (path is None):
        raise TypeError("check() takes either source text or path=")
    loaded = load_text(source, "<input>") if source is not None else load_path(str(path))
    if loaded.has_errors:
        return loaded.diagnostics
    return loaded.diagnostics + check_loaded(loaded)


def __getattr__(name: str) -> object:
    if name == "ReqonSyntaxError":
        from reqon.diagnostics import ReqonSyntaxError

        return ReqonSyntaxError
    raise AttributeError(name)
