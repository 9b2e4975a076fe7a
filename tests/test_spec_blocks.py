"""Every ```vague block of the language reference parses (LANGUAGE.md, issue 13).

Users copy the reference's examples, so each block must be valid Reqon. A block
is parsed as a whole file first; a fragment is wrapped as mission members, as
the steps of an action, as the fields of a `map`, or (lines of standalone
expressions) one `let` per line — the first wrapping that parses wins. Blocks
that are whole missions must also check without errors; fragments must at least
have no pattern errors (E315), since their names are declared elsewhere.

The reference lives in `../shared/spec/` next to the repository (CI puts it
there); `REQON_SPEC` may point at another copy of LANGUAGE.md.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from reqon.checker import check_loaded
from reqon.loader import load_text
from reqon.parser import parse_text

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path(os.environ.get("REQON_SPEC", ROOT.parent / "shared" / "spec" / "LANGUAGE.md"))

WRAPPINGS = (
    ("file", "{}"),
    ("mission members", "mission M {{\n{}\n}}"),
    ("action steps", "mission M {{ action A {{\n{}\n}} run A }}"),
    ("map fields", "mission M {{ action A {{ map response -> T {{\n{}\n}} }} run A }}"),
)

# Blocks meant to fail, by their first line, with the reason. None today: every block
# of the reference is valid Reqon.
MEANT_TO_FAIL: dict[str, str] = {}


def _blocks(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        return []
    text = path.read_text("utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1))
            for m in re.finditer(r"^```vague\n(.*?)^```", text, re.S | re.M)]


BLOCKS = _blocks(SPEC)
DOC_BLOCKS = [(f"{path.relative_to(ROOT)}:{line}", block)
              for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
              for line, block in _blocks(path) if "…" not in block]  # "…" marks an elided excerpt
if not BLOCKS:
    print(f"test_spec_blocks: skipped, {SPEC} is not there (CI puts ../shared next to the clone)")


def _as_expression_lines(block: str) -> str:
    """Standalone expressions, one per line (§5.9, §5.11): one `let` each."""
    lines = [line for line in block.splitlines() if line.strip()]
    steps = "\n".join(f"let v{i} = {line}" for i, line in enumerate(lines))
    return f"mission M {{ action A {{\n{steps}\n}} run A }}"


def _parse(block: str) -> tuple[str, str] | None:
    """(wrapping, wrapped text) of the first wrapping that parses, or None."""
    for name, template in WRAPPINGS:
        text = template.format(block)
        program, _ = parse_text(text, "block.vague")
        if program is not None:
            return name, text
    text = _as_expression_lines(block)
    program, _ = parse_text(text, "block.vague")
    return ("expression lines", text) if program is not None else None


@pytest.mark.skipif(not BLOCKS, reason=f"{SPEC} is not next to the repository")
def test_the_reference_has_vague_blocks() -> None:
    assert len(BLOCKS) >= 15
    assert any("match response {" in block for _, block in BLOCKS)


@pytest.mark.skipif(not BLOCKS, reason=f"{SPEC} is not next to the repository")
@pytest.mark.parametrize(("line", "block"), BLOCKS, ids=[f"line-{line}" for line, _ in BLOCKS])
def test_every_vague_block_of_the_reference_parses(line: int, block: str) -> None:
    first = block.strip().splitlines()[0]
    parsed = _parse(block)
    if first in MEANT_TO_FAIL:
        assert parsed is None, f"LANGUAGE.md:{line} is listed as failing ({MEANT_TO_FAIL[first]}) but parses"
        return
    if parsed is None:
        _, diagnostics = parse_text(block, "block.vague")
        pytest.fail(f"LANGUAGE.md:{line}: no wrapping parses; as a file: {diagnostics[0].message}")
    wrapping, text = parsed
    diagnostics = check_loaded(load_text(text, "block.vague"))
    if block.lstrip().startswith("mission"):
        errors = [f"{d.code} {d.message}" for d in diagnostics if d.severity == "error"]
        assert errors == [], f"LANGUAGE.md:{line}: a whole mission must check clean"
    else:
        patterns = [f"{d.message} at {d.span.line}:{d.span.column}" for d in diagnostics if d.code == "E315"]
        assert patterns == [], f"LANGUAGE.md:{line} ({wrapping}): pattern errors"


@pytest.mark.parametrize(("where", "block"), DOC_BLOCKS, ids=[where for where, _ in DOC_BLOCKS])
def test_every_vague_block_of_the_project_docs_parses(where: str, block: str) -> None:
    """The same for README.md and docs/: what users copy from here must parse as well."""
    assert _parse(block) is not None, f"{where}: no wrapping parses"
