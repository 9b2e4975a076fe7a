"""Rendering of diagnostics (§8.4): one format, carets under the token, colour that strips cleanly."""
from __future__ import annotations

import io

import pytest

from reqon.ast import Span
from reqon.diagnostics import error, render_all, render_text, strip_ansi, summary_line, to_json, use_colour, warning

SOURCE = "mission Shop {\n\tstore response -> prise { key: .isbn }\n}\n"
DIAG = error("E206", Span("shop.vague", 2, 20, 2, 25, 34, 39), "unknown store 'prise'", "did you mean 'prices'?")


def test_header_line_tabs_and_carets() -> None:
    assert render_text(DIAG, {"shop.vague": SOURCE}) == (
        "shop.vague:2:20: error[E206]: unknown store 'prise'\n"
        "2 | \tstore response -> prise { key: .isbn }\n"
        "  | \t                  ^^^^^\n"
        "  = help: did you mean 'prices'?")


def test_removing_colour_gives_exactly_the_plain_output() -> None:
    coloured = render_all([DIAG, warning("W502", Span("shop.vague", 1, 9, 1, 13), "never used")],
                          {"shop.vague": SOURCE}, colour=True)
    plain = render_all([DIAG, warning("W502", Span("shop.vague", 1, 9, 1, 13), "never used")],
                       {"shop.vague": SOURCE}, colour=False)
    assert "\x1b[" in coloured and strip_ansi(coloured) == plain


def test_summary_counts_and_json_fields() -> None:
    assert summary_line([DIAG, DIAG]) == "2 errors"
    assert summary_line([DIAG, warning("W501", DIAG.span, "x")]) == "1 error, 1 warning"
    assert to_json(DIAG) == {"file": "shop.vague", "line": 2, "column": 20, "endLine": 2, "endColumn": 25,
                             "severity": "error", "code": "E206", "message": "unknown store 'prise'",
                             "notes": ["did you mean 'prices'?"]}


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("no_color, term, expected", [(None, "xterm", True), ("1", "xterm", False),
                                                      ("", "xterm", True), (None, "dumb", False)])
def test_colour_only_on_a_terminal_with_no_color_and_term_honoured(
        monkeypatch: pytest.MonkeyPatch, no_color: str | None, term: str, expected: bool) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    monkeypatch.setenv("TERM", term)
    assert use_colour(_Tty()) is expected
    assert use_colour(io.StringIO()) is False
