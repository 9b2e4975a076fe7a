"""bench/parse: front-end speed on a generated mission of 1,000 actions (about 5,000 lines).

Figures (issues 3 and 14):
* parse and parse + check throughput in lines per second (in-process CPU time, best of
  several rounds), with the parse split into lexer, LALR driver and AST construction;
* the whole `reqon check FILE` process, wall time (best of several runs), which is
  what a user or an editor integration waits for; and a process that imports the parser
  and parses the file five times, the TypeScript benchmark's shape.

Run:  .venv/bin/python -m bench.parse [--actions 1000] [--rounds 5]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_ACTION_SHAPES = [
    # (lines, text) — shapes taken from the example missions, so the token density is realistic
    """  // Fetch page {i} of the catalogue and keep what is new.
  action Fetch{i} {{
    get "/books" {{ params: {{ per_page: 50, shelf: "s{i}" }}, paginate: page(page, 50) }}
    store response -> books {{ key: .isbn, upsert: true }}
  }}
""",
    """  action Enrich{i} {{
    for book in books where .pages != null parallel {{
      get "/prices/{{book.isbn}}"
      store {{ isbn: book.isbn, amount: response.amount ?? 0 }} -> prices {{ key: .isbn }}
    }}
  }}
""",
    """  action Check{i} {{
    match books {{ [Book] -> continue, _ -> abort "books of {i} do not look like books" }}
  }}

""",
]


def generate(actions: int) -> str:
    out = [
        "// A generated mission for bench/parse.",
        "mission Generated {",
        '  source Shelf { auth: none, base: "http://127.0.0.1:8765", timeout: 10s }',
        '  store books: memory("books")',
        '  store prices: memory("prices")',
        "",
        "  schema Book { isbn: string, title: string, pages: int? }",
        "",
    ]
    for i in range(actions):
        out.append(_ACTION_SHAPES[i % len(_ACTION_SHAPES)].format(i=i).rstrip("\n") + "\n")
    stages = "\n    then ".join(_stage(i, actions) for i in range(0, actions, len(_ACTION_SHAPES)))
    out.append(f"  run {stages}\n}}\n")
    return "\n".join(out)


def _stage(i: int, actions: int) -> str:
    """`Fetch` writes the books that `Enrich` and `Check` read, so they run one stage later."""
    kinds = ["Fetch", "Enrich", "Check"]
    names = [f"{kinds[k]}{i + k}" for k in range(len(kinds)) if i + k < actions]
    return names[0] if len(names) == 1 else f"{names[0]} then [{', '.join(names[1:])}]"


def split(text: str, rounds: int) -> dict[str, float]:
    """Where parse time goes (best CPU time of `rounds`): the lexer alone, the LALR driver with
    a builder that builds nothing (shifts, reductions, child filtering), and the whole parse;
    the difference between the last two is AST construction (nodes, spans, string decoding)."""
    from reqon import lalr_tables
    from reqon.grammar import grammar_text
    from reqon.lalr_driver import _LEXER, FastParser
    from reqon.parser import get_parser

    class Nothing:
        """A builder whose every rule method returns None."""

        def __getattr__(self, name: str) -> object:
            return lambda span, children: None

    parser = get_parser()
    null = FastParser(lalr_tables.load(grammar_text(), parser._build_lark), Nothing())
    null._parse(text)  # fill the unit-chain memo outside the timing, as the real parser has

    def lex() -> None:
        pos, size, match = 0, len(text), _LEXER.match
        while pos < size:
            m = match(text, pos)
            if m is None or m.end() == pos:
                break
            pos = m.end()

    def full() -> None:
        assert parser.parse(text, "generated.vague")[0] is not None

    found = {}
    for name, work in (("lexer", lex), ("driver, no AST", lambda: null._parse(text)), ("whole parse", full)):
        best = float("inf")
        for _ in range(rounds):
            t0 = time.process_time()
            work()
            best = min(best, time.process_time() - t0)
        found[name] = best
    return found


def process_best(command: list[str], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        done = subprocess.run(command, capture_output=True)
        best = min(best, time.perf_counter() - t0)
        assert done.returncode == 0, done.stderr.decode()[:500]
    return best


def measure(actions: int, rounds: int) -> None:
    from reqon.checker import check_loaded
    from reqon.loader import load_text

    text = generate(actions)
    lines = text.count("\n")
    load_text("mission M { action A { get \"/\" } run A }")  # build the parser outside the timing
    best_parse = best_total = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()  # CPU time: the figure does not depend on other load on the machine
        loaded = load_text(text, "generated.vague")
        t1 = time.process_time()
        diagnostics = check_loaded(loaded)
        t2 = time.process_time()
        best_parse = min(best_parse, t1 - t0)
        best_total = min(best_total, t2 - t0)
    errors = [d for d in loaded.diagnostics + diagnostics if d.is_error]
    assert not errors, errors[:3]
    parts = split(text, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated.vague"
        path.write_text(text)
        reqon = Path(sys.executable).with_name("reqon")
        subprocess.run([str(reqon), "check", str(path)], capture_output=True)  # warm the tables cache
        check = process_best([str(reqon), "check", str(path)], rounds)
        five = process_best([sys.executable, "-c", "import sys\nfrom reqon.parser import parse\n"
                             "text = open(sys.argv[1]).read()\nfor _ in range(5): parse(text)", str(path)], rounds)
    print(f"in process: best CPU time of {rounds}; processes: best wall clock of {rounds}\n")
    print("| lines | lexer s | driver, no AST s | parse s | parse+check s | lines/s (parse) | "
          "`reqon check` process s | import + 5 parses process s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {lines} | {parts['lexer']:.3f} | {parts['driver, no AST']:.3f} | {best_parse:.3f} | "
          f"{best_total:.3f} | {lines / best_parse:,.0f} | {check:.3f} | {five:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    measure(args.actions, args.rounds)


if __name__ == "__main__":
    main()
