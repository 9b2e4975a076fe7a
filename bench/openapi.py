"""OpenAPI sources (issue 17): what a `from` document costs.

* check     `reqon check` (the whole process, wall and CPU) of a mission whose source is
            GitHub's OpenAPI description (13 MB JSON): cold cache, then cached; against the
            same process on the same mission without `from` (the floor: start-up, parse, check)
* call      marginal CPU per request of the reqon process on the fanout workload
            (sequential item GETs at zero latency): `get "/items/{item.id}"` against
            `call Api.getItem`, and `call` with validateResponses: true
* validate  in-process cost of validating one 10 KB response (GitHub's repos/list-for-org
            schema, its own example data repeated to 10 KB), valid and invalid

Needs GitHub's document in .cache/octokit-openapi (fetched by .ci/run; see tests/openapi/test_github.py). Best of N rounds;
the machine is shared, so CPU times are the figures to read.

    .venv/bin/python -m bench.openapi [--rounds 5] [--items 5000] [--only check|call|validate]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.engine import Server

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / ".cache/octokit-openapi/api.github.com.json"
REQON = Path(sys.executable).with_name("reqon")

ITEMS_DOC = """openapi: 3.0.3
info: {title: items, version: "1"}
paths:
  /pages:
    get:
      operationId: listPages
      parameters:
        - {name: page, in: query, schema: {type: integer}}
        - {name: size, in: query, schema: {type: integer}}
        - {name: total, in: query, schema: {type: integer}}
      responses:
        "200":
          description: a page
          content: {application/json: {schema: {type: object}}}
  /items/{id}:
    get:
      operationId: getItem
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses:
        "200":
          description: an item
          content:
            application/json:
              schema:
                type: object
                required: [id, value]
                properties: {id: {type: integer}, value: {type: string}}
"""


def _process(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of one child process. HOME is the bench's own, so
    the Lark table cache in ~/.cache/reqon is this checkout's (other checkouts with another
    grammar sharing the machine would otherwise make every process rebuild it)."""
    env = {**env, "HOME": str(cwd / "home")}
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    assert process.stderr is not None
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{args} failed: {err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def bench_check(rounds: int, work: Path) -> None:
    mission = f"""mission GitHubIssues {{
  source GitHub from "{GITHUB}" {{ auth: bearer, base: "http://127.0.0.1:9" }}
  store repos: memory("repos")
  action Repos {{
    call GitHub."repos/list-for-org" {{ params: {{ org: "octo-org", per_page: 30 }}, paginate: page(page, 30) }}
    for repo in response {{ call GitHub."issues/list-for-repo" {{ params: {{ owner: repo.owner.login, repo: repo.name }} }} }}
    store response -> repos
  }}
  run Repos
}}
"""
    plain = mission.replace(f'from "{GITHUB}" ', "").replace('call GitHub."repos/list-for-org"', 'get "/orgs/x/repos"') \
        .replace('call GitHub."issues/list-for-repo"', 'get "/repos/x/y/issues"')
    (work / "github.vague").write_text(mission)
    (work / "plain.vague").write_text(plain)
    rows = {"cold cache": [], "cached": [], "same mission without `from`": []}
    for n in range(rounds):
        env = {**os.environ, "XDG_DATA_HOME": str(work / f"xdg{n}")}
        rows["cold cache"].append(_process([str(REQON), "check", "github.vague"], env, work))
        rows["cached"].append(_process([str(REQON), "check", "github.vague"], env, work))
        rows["same mission without `from`"].append(_process([str(REQON), "check", "plain.vague"], env, work))
    print("| `reqon check` | wall s (best) | CPU s (best) |\n|---|---:|---:|")
    for name, samples in rows.items():
        print(f"| {name} | {min(w for w, _ in samples):.3f} | {min(c for _, c in samples):.3f} |")
    print()


def _fanout(step: str, source: str, items: int) -> str:
    return f"""mission Fanout {{
  {source}
  store items: memory("items")
  action List {{
    get "/pages" {{ params: {{ size: 1000, total: {items} }}, paginate: page(page, 1000) }}
    store response -> items {{ key: toString(.id) }}
  }}
  action Fetch {{
    for item in items {{
      {step}
    }}
  }}
  run List then Fetch
}}
"""


def bench_call(rounds: int, items: int, work: Path) -> None:
    """Marginal CPU per request: (CPU at `items` - CPU at `items // 5`) / the requests between,
    so start-up, imports and one-time preparation (validators) cancel out."""
    (work / "items.yaml").write_text(ITEMS_DOC)
    server = Server(0)
    sizes = (items // 5, items)
    try:
        base = f'base: "{server.url}"'
        variants = {
            "get": ('get "/items/{item.id}"', f"source Api {{ auth: none, {base} }}"),
            "call": ("call Api.getItem { params: { id: item.id } }",
                     f'source Api from "items.yaml" {{ auth: none, {base} }}'),
            "call + validateResponses": ("call Api.getItem { params: { id: item.id } }",
                                         f'source Api from "items.yaml" {{ auth: none, {base}, validateResponses: true }}'),
        }
        results: dict[tuple[str, int], list[float]] = {(name, n): [] for name in variants for n in sizes}
        env = {**os.environ, "XDG_DATA_HOME": str(work / "xdg-call")}
        for _ in range(rounds):
            for n in sizes:
                for name, (step, source) in variants.items():  # interleaved: load changes hit every variant alike
                    (work / "fanout.vague").write_text(_fanout(step, source, n))
                    _, cpu = _process([str(REQON), "run", "fanout.vague", "--quiet", "--data-dir",
                                       str(work / "data")], env, work)
                    results[(name, n)].append(cpu)
    finally:
        server.close()
    between = sizes[1] - sizes[0]
    print(f"fanout: sequential item GETs at zero latency; CPU (user + sys) of the reqon process, best of {rounds}; "
          f"per request = (CPU at {sizes[1]} items - CPU at {sizes[0]}) / {between}\n")
    print(f"| variant | CPU s at {sizes[0]} | CPU s at {sizes[1]} | CPU ms per request | vs get |\n"
          "|---|---:|---:|---:|---:|")
    marginal = {name: (min(results[(name, sizes[1])]) - min(results[(name, sizes[0])])) / between
                for name in variants}
    for name in variants:
        print(f"| {name} | {min(results[(name, sizes[0])]):.3f} | {min(results[(name, sizes[1])]):.3f} | "
              f"{marginal[name] * 1000:.3f} | {marginal[name] / marginal['get']:.3f}x |")
    print()


def bench_validate(rounds: int) -> None:
    from reqon.openapi.cache import load_file
    from reqon.openapi.validation import DocumentSchemas

    doc = load_file(GITHUB)
    schemas = DocumentSchemas(doc)
    operation = doc.operations["repos/list-for-org"]
    started = time.perf_counter()
    check = schemas.response(operation, 200, "application/json")
    assert check is not None
    prepare = time.perf_counter() - started
    sample = doc.root["components"]["examples"]["minimal-repository-items"]["value"]
    while len(json.dumps(sample)) < 10_000:
        sample = sample + sample
    invalid = [dict(sample[0], id="not a number"), *sample[1:]]
    print(f"one response of {len(json.dumps(sample)):,} bytes ({len(sample)} repositories); "
          f"validators prepared once per run in {prepare:.2f} s\n")
    print("| response | ms per validation (best) |\n|---|---:|")
    for name, value, n in (("valid (the common case)", sample, 2000), ("invalid (errors named)", invalid, 200)):
        best = float("inf")
        for _ in range(rounds):
            t0 = time.process_time()
            for _ in range(n):
                check.problems(value)
            best = min(best, (time.process_time() - t0) / n)
        print(f"| {name} | {best * 1000:.4f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--only", choices=("check", "call", "validate"))
    args = parser.parse_args()
    if not GITHUB.is_file():
        sys.exit(f"bench.openapi needs {GITHUB} (see tests/openapi/test_github.py)")
    work = Path(tempfile.mkdtemp(prefix="reqon-bench-openapi-"))
    try:
        (work / "warm.vague").write_text('mission W { action A { let x = 1 } run A }')
        _process([str(REQON), "check", "warm.vague"], dict(os.environ), work)  # builds the Lark table cache
        if args.only in (None, "check"):
            bench_check(args.rounds, work)
        if args.only in (None, "call"):
            bench_call(args.rounds, args.items, work)
        if args.only in (None, "validate"):
            os.environ["XDG_DATA_HOME"] = str(work / "xdg0")
            bench_validate(args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
