"""Property-based fuzzing of the whole front end: any mutation of a real mission gives diagnostics.

Hypothesis mutates the example missions (cut, duplicate or swap slices of text,
insert stray characters); loading and checking must return diagnostics and never
raise, and every diagnostic must point inside the text it describes.
"""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqon.checker import check_loaded
from reqon.loader import load_text

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p.read_text() for p in sorted((ROOT / "examples").glob("*.vague"))]
SPEC = ROOT.parent / "shared" / "spec" / "examples"
if SPEC.is_dir():
    SOURCES += [p.read_text() for p in sorted(SPEC.glob("*.vague"))]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SOURCES))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 80)))
        kind = draw(st.sampled_from(["cut", "duplicate", "insert", "swap"]))
        if kind == "cut":
            text = text[:i] + text[j:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif kind == "insert":
            text = text[:i] + draw(st.sampled_from(list("{}[]()\"'/*!;@.,:?-=>") + ["\n", "run", "->", "..."])) + text[i:]
        else:
            k = draw(st.integers(0, len(text)))
            text = text[:i] + text[k:k + (j - i)] + text[j:]
    return text


@settings(max_examples=400, deadline=2000, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_missions_give_only_diagnostics(text: str) -> None:
    loaded = load_text(text, "fuzz.vague")
    diagnostics = loaded.diagnostics + ([] if loaded.has_errors else check_loaded(loaded))
    lines = text.count("\n") + 1
    for d in diagnostics:
        assert d.code[0] in "EW" and d.code[1:].isdigit()
        assert d.span.file == "fuzz.vague"
        assert 1 <= d.span.line <= lines
        assert d.span.column >= 1
        assert d.message
