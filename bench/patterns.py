"""bench/patterns: the cost of the §4.9.1 patterns (issue 13).

Two figures:
* `reqon check FILE` as a whole process on the 5,000-line benchmark file of
  bench/parse, and on a file of the same size whose actions are matches with
  object, list and binding patterns, guards and subject-less matches (wall time,
  best of several runs: what a user waits for);
* a match expression of 20 object-pattern arms evaluated over many subjects
  (subjects per second of CPU time, best of several rounds), patterns compiled
  once. Subjects are spread evenly over the arms, so on average ten arms are tried.

Run:  .venv/bin/python -m bench.patterns [--rounds 5] [--subjects 100000]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.parse import generate

_MATCH_ACTION = """  action Handle{i} {{
    get Shelf "/books/{i}" {{ allow: [401, 404, 429] }}
    match response {{
      {{ data: [first, ...rest], success: true }} where length(rest) < 100 -> store response.data -> books,
      {{ error: e, code: 401 }} -> jump Refresh then retry,
      {{ error: e, code: 429 }} -> retry {{ delay: 1s }},
      [Book] -> store response -> books {{ key: .isbn }},
      {{ error: e }} -> abort "API error: " + e,
      _ -> abort "unexpected"
    }}
    let label = match response.total {{ 0 => "none", n where n > 10 => "many", _ => "some" }}
    match {{ length(books) > 0 -> skip, _ -> continue }}
  }}
"""


def generate_matches(actions: int) -> str:
    out = [
        "mission Matches {",
        '  source Shelf { auth: none, base: "http://127.0.0.1:8765" }',
        '  store books: memory("books")',
        "  schema Book { isbn: string, title: string, pages: int? }",
        '  action Refresh { post Shelf "/session" }',
    ]
    out.extend(_MATCH_ACTION.format(i=i) for i in range(actions))
    out.append("  run " + " then ".join(f"Handle{i}" for i in range(actions)) + "\n}\n")
    return "\n".join(out)


def check_process(text: str, rounds: int) -> tuple[int, float, float]:
    """Lines, best wall time and best CPU time (user + system) of `reqon check FILE`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.vague"
        path.write_text(text)
        reqon = Path(sys.executable).with_name("reqon")
        subprocess.run([str(reqon), "check", str(path)], capture_output=True)  # warm the grammar cache
        best = best_cpu = float("inf")
        for _ in range(rounds):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            done = subprocess.run([str(reqon), "check", str(path)], capture_output=True)
            best = min(best, time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            best_cpu = min(best_cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            assert done.returncode == 0, done.stderr.decode()[:500]
    return text.count("\n"), best, best_cpu


def match_throughput(subjects: int, rounds: int) -> float:
    from reqon import ast
    from reqon.engine.expressions import Expressions, Scope
    from reqon.parser import parse

    arms = ",\n".join(f'{{ kind: "k{i}", n: n, tags: [first, ...rest] }} where n >= 0 => n + {i}'
                      for i in range(20))
    program = parse(f"action A {{ let r = match s {{\n{arms},\n_ => null\n}} }}")
    action = program.declarations[0]
    assert isinstance(action, ast.Action) and isinstance(action.steps[0], ast.Let)
    expr = action.steps[0].value
    values = [{"kind": f"k{i % 20}", "n": i, "tags": ["a", "b"], "other": True} for i in range(subjects)]
    x = Expressions({}, {})
    scopes = [Scope(None, {"s": v}) for v in values]
    assert x.eval(expr, scopes[21]) == 21 + 1  # kind k1, n 21: the second arm
    best = float("inf")
    for _ in range(rounds):
        t0 = time.process_time()  # CPU time: independent of the load other processes put on the machine
        for scope in scopes:
            x.eval(expr, scope)
        best = min(best, time.process_time() - t0)
    return subjects / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=100_000)
    args = parser.parse_args()
    print(f"| file | lines | `reqon check` process wall s | process CPU s | (best of {args.rounds}) |")
    print("|---|---:|---:|---:|---|")
    for name, text in (("bench/parse (1,000 actions)", generate(1000)),
                       ("matches with patterns (350 actions)", generate_matches(350))):
        lines, seconds, cpu = check_process(text, args.rounds)
        print(f"| {name} | {lines} | {seconds:.3f} | {cpu:.3f} | |")
    rate = match_throughput(args.subjects, args.rounds)
    print(f"\nmatch of 20 object-pattern arms: **{rate:,.0f} subjects/s** (CPU time, best of {args.rounds})")


if __name__ == "__main__":
    main()
