"""Parser and checker fuzzing (issue 7): seeded mutations of the example missions fed to `reqon check`.

Whatever the input, `reqon check` must answer with exit 0 or 1, never an internal error
(70) or a traceback; every diagnostic must have the documented shape
(`file:line:col: severity[CODE]: message`, source line, carets, notes, a final count), and
no input may take more than 5 s. Most mutations run in-process through `reqon.cli.main`
(the same code path as the command, minus the interpreter start); a few dozen go through
a real process to check the exit code the shell sees.
"""
from __future__ import annotations

import contextlib
import io
import random
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reqon.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPEC_EXAMPLES = ROOT.parent / "shared" / "spec" / "examples"
SEED = 7_2024
MUTATIONS_PER_OPERATOR = 160  # × 8 operators = 1,280 in-process
SUBPROCESS_MUTATIONS = 36
LIMIT_S = 5.0


def corpus() -> list[tuple[str, bytes]]:
    """Every example mission of the repository and of the reference, file by file."""
    paths = sorted((ROOT / "examples").glob("*.vague"))
    if SPEC_EXAMPLES.is_dir():
        paths += sorted(SPEC_EXAMPLES.rglob("*.vague"))
    return [(p.name, p.read_bytes()) for p in paths]


# --------------------------------------------------------------------------- mutations

TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|[0-9][0-9.]*|\s+|.', re.S)
BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\x00"]
NESTERS = [(b"(", b")"), (b"[", b"]"), (b"{ a: ", b" }"), (b"match x { _ -> ", b" }"), (b"for x in xs { ", b" }"),
           (b"{", b"")]
UNARY = [b"-", b"not ", b"- ", b"+"]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(len(data))]


def _tokens(data: bytes) -> list[bytes]:
    return TOKEN.findall(data)


def delete_tokens(data: bytes, rng: random.Random) -> bytes:
    tokens = _tokens(data)
    for _ in range(rng.randint(1, 6)):
        del tokens[rng.randrange(len(tokens))]
    return b"".join(tokens)


def duplicate_tokens(data: bytes, rng: random.Random) -> bytes:
    tokens = _tokens(data)
    for _ in range(rng.randint(1, 6)):
        i = rng.randrange(len(tokens))
        tokens[i:i] = tokens[i:i + rng.randint(1, 4)] * rng.randint(1, 3)
    return b"".join(tokens)


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    tokens = _tokens(data)
    opener, closer = rng.choice(NESTERS)
    depth = rng.choice([20, 100, 500, 2000, 20000])
    closed = closer * depth if rng.random() < 0.7 else b""
    i = rng.randrange(len(tokens))
    tokens[i:i] = [opener * depth + rng.choice([b"1", b"x", b'"s"', b""]) + closed]
    return b"".join(tokens)


def unary_chain(data: bytes, rng: random.Random) -> bytes:
    """Nesting without brackets: `- - - … 1` builds as deep a tree as `((( … )))`."""
    tokens = _tokens(data)
    i = rng.randrange(len(tokens))
    tokens[i:i] = [rng.choice(UNARY) * rng.choice([20, 100, 400, 2000]) + rng.choice([b"1", b"x", b""])]
    return b"".join(tokens)


def invalid_utf8(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(out) + 1)
        out[i:i] = rng.choice(BAD_UTF8)
    return bytes(out)


def splice(data: bytes, rng: random.Random) -> bytes:
    """A stretch of one place pasted into another: declarations where steps belong, and so on."""
    tokens = _tokens(data)
    start = rng.randrange(len(tokens))
    chunk = tokens[start:start + rng.randint(1, 40)]
    i = rng.randrange(len(tokens))
    tokens[i:i] = chunk
    return b"".join(tokens)


OPERATORS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "byte flips": flip_bytes, "truncation": truncate, "token deletion": delete_tokens,
    "token duplication": duplicate_tokens, "deep nesting": deep_nesting, "unary chain": unary_chain,
    "invalid UTF-8": invalid_utf8, "splice": splice,
}


@dataclass(frozen=True)
class Mutation:
    number: int
    operator: str
    base: str
    data: bytes


def mutations(count_per_operator: int, seed: int) -> list[Mutation]:
    rng = random.Random(seed)
    files = corpus()
    result = []
    for operator, mutate in OPERATORS.items():
        for _ in range(count_per_operator):
            base, data = rng.choice(files)
            result.append(Mutation(len(result), operator, base, mutate(data, rng)))
    return result


# --------------------------------------------------------------------------- the shape of the answer

HEADER = r"^{file}:(\d+):(\d+): (error|warning)\[([EW]\d{{3}})\]: \S.*$"
SOURCE = re.compile(r"^ *\d+ \| ")
CARETS = re.compile(r"^ *\| *\^+$")
NOTE = re.compile(r"^ *= (help|note): \S")
COUNT = re.compile(r"^(\d+ errors?(, \d+ warnings?)?|\d+ warnings?)$")


def check_answer(path: Path, code: int, stderr: str, source: bytes) -> None:
    """Exit 0/1, no traceback, and every diagnostic block in the documented shape (§8.4)."""
    assert code in (0, 1), f"exit {code}: {stderr[-2000:]}"
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr[-2000:]
    if not stderr:
        assert code == 0
        return
    header = re.compile(HEADER.format(file=re.escape(str(path))))
    blocks = stderr.rstrip("\n").split("\n\n")
    assert COUNT.match(blocks[-1]), blocks[-1]
    lines = source.count(b"\n") + source.count(b"\r") + 1
    for block in blocks[:-1]:
        first, *rest = block.split("\n")
        match = header.match(first)
        assert match, f"malformed diagnostic line: {first!r}"
        assert 1 <= int(match.group(1)) <= lines and int(match.group(2)) >= 1, first
        for line in rest:
            assert SOURCE.match(line) or CARETS.match(line) or NOTE.match(line), f"in {first!r}: {line!r}"
    errors = sum(1 for b in blocks[:-1] if "error[" in b.split("\n")[0])
    assert (code == 1) == (errors > 0)


def check_in_process(path: Path) -> tuple[int, str, float]:
    err = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["check", str(path)])
    return code, err.getvalue(), time.monotonic() - started


def test_corpus_is_the_examples() -> None:
    names = [name for name, _ in corpus()]
    assert len(names) >= 4 and "bookstore-catalogue.vague" in names


def test_seeded_mutations_in_process(tmp_path: Path) -> None:
    cases = mutations(MUTATIONS_PER_OPERATOR, SEED)
    path = tmp_path / "mutant.vague"
    tried: Counter[str] = Counter()
    slowest = 0.0
    for case in cases:
        path.write_bytes(case.data)
        code, stderr, elapsed = check_in_process(path)
        tried[case.operator] += 1
        slowest = max(slowest, elapsed)
        try:
            check_answer(path, code, stderr, case.data)
            assert elapsed < LIMIT_S, f"{elapsed:.1f}s"
        except AssertionError:
            kept = tmp_path / f"failing-{case.number}.vague"
            kept.write_bytes(case.data)
            print(f"\nmutation {case.number} ({case.operator} of {case.base}) kept as {kept}")
            raise
    print(f"\n{sum(tried.values())} mutations checked in-process ({dict(tried)}); slowest {slowest:.2f}s")
    assert sum(tried.values()) >= 1000


@pytest.mark.parametrize("tail", ["1 }", "1 let }"], ids=["valid", "broken"])
def test_long_unary_chains_do_not_overflow(tmp_path: Path, tail: str) -> None:
    path = tmp_path / "chain.vague"
    data = ("mission M { action A { let x = " + "-" * 500 + tail + " run A }").encode()
    path.write_bytes(data)
    code, stderr, _ = check_in_process(path)
    check_answer(path, code, stderr, data)


def test_seeded_mutations_through_a_real_process(tmp_path: Path) -> None:
    cases = mutations(SUBPROCESS_MUTATIONS // len(OPERATORS) + 1, SEED + 1)[:SUBPROCESS_MUTATIONS]

    def run(case: Mutation) -> None:
        path = tmp_path / f"mutant-{case.number}.vague"
        path.write_bytes(case.data)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "reqon.cli", "check", str(path)], capture_output=True,
                              text=True, errors="replace", timeout=30, cwd=ROOT)
        assert time.monotonic() - started < LIMIT_S + 1  # + the interpreter start
        check_answer(path, done.returncode, done.stderr, case.data)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(run, cases))


# --------------------------------------------------------------------------- grammar-aware noise

VOCABULARY = ["mission", "source", "store", "schema", "action", "transform", "run", "then", "for", "in", "where",
              "parallel", "get", "post", "map", "apply", "validate", "assume", "match", "let", "skip", "abort",
              "retry", "queue", "jump", "wait", "if", "else", "warn", "is", "not", "and", "or", "true", "null",
              "{", "}", "[", "]", "(", ")", ",", ":", "->", "=>", ".", "..", "...", "?", "??", "==", "!=", "<",
              "+", "-", "*", "/", "|", "_", "x", "Books", "books", '"/path/{x.id}"', '"s', "1", "2.5", "10s",
              "auth", "none", "base", "memory", '("m")', "paginate", "page", "\n", " ", "//c\n", "/*", "*/"]


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(VOCABULARY), max_size=80))
def test_token_soup(tmp_path_factory: pytest.TempPathFactory, tokens: list[str]) -> None:
    path = tmp_path_factory.mktemp("soup") / "soup.vague"
    data = " ".join(tokens).encode("utf-8")
    path.write_bytes(data)
    code, stderr, elapsed = check_in_process(path)
    check_answer(path, code, stderr, data)
    assert elapsed < LIMIT_S
