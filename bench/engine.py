"""bench/engine: whole missions as users time them, against a hand-written httpx script (issues 4, 14).

Every scenario is run as a real process, `reqon run FILE`, and next to it, in the same run
and against the same API process, `bench/httpx_floor.py` doing the same requests with a
plain `httpx.AsyncClient` (the floor to beat). Each is run `--repeat` times; the table
shows the best wall clock (the machine is shared, so the best is the least disturbed; the
short scenarios run four times as often), the best CPU time (user + system, much less
disturbed by other load than the wall clock), the largest peak RSS, and reqon's in-process
figure (the stage durations from `--json-log`) so that start-up and work can be told apart.

Scenarios (the API runs in a separate process; latency is the server's `asyncio.sleep`):

* startup     one GET + one store write at 20 ms
* fanout      sequential GETs at 20 ms: the list pages + one GET per item in a plain `for`
* fanout_par  the same work with the item GETs in a `for … parallel` loop, concurrency 10
* wide        10 parallel branches, each paginating 20 pages (21 requests) at 20 ms
* throughput  a `for … parallel` loop, concurrency 50, zero latency, one GET + one store write each

`--items` sets the fan-out size (default 500, so the whole bench takes about two minutes);
`--full` is the issue's size, 2,008 items (2,011 requests). The ideal is the latency times
the requests that must follow one another.

Optional TypeScript comparison: set `REQON_TS` to the command that runs a mission with
the original (for example `REQON_TS="node /path/to/reqon/dist/cli.js"`); it is then run
on the same files, `$REQON_TS FILE`, and shown in its own column.

Run:  .venv/bin/python -m bench.engine [--scenario NAME ...] [--items N | --full] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

LATENCY_MS = 20.0


class Server:
    """`python -m reqon.demo.server` in its own process, on an ephemeral port."""

    def __init__(self, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reqon.demo.server", "--port", "0", "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""
        if "listening on" not in line:
            raise RuntimeError(f"demo server did not start: {line!r}")
        self.url = line.split("listening on", 1)[1].strip()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _mission(name: str, body: str, url: str) -> str:
    return f"""mission {name} {{
  source Api {{ auth: none, base: "{url}", timeout: 30s }}
  store items: memory("items")
  store results: memory("results")
{body}
}}
"""


def fanout_body(items: int, parallel: bool) -> str:
    page_size = 1000
    loop = "parallel " if parallel else ""
    setting = "concurrency: 10\n    " if parallel else ""
    return f"""
  action List {{
    get "/pages" {{ params: {{ size: {page_size}, total: {items} }}, paginate: page(page, {page_size}) }}
    store response -> items {{ key: toString(.id) }}
  }}
  action Fetch {{
    {setting}for item in items {loop}{{
      get "/items/{{item.id}}"
    }}
  }}
  run List then Fetch
"""


def wide_body(branches: int, pages: int) -> str:
    actions = "\n".join(f"""  action Read{i} {{
    get "/pages" {{ params: {{ size: 10, total: {pages * 10}, branch: {i} }}, paginate: page(page, 10),
                    until: length(response.items) < 10 }}
  }}""" for i in range(branches))
    names = ", ".join(f"Read{i}" for i in range(branches))
    return f"{actions}\n  run [{names}]\n"


def throughput_body(items: int) -> str:
    return f"""
  action List {{
    get "/pages" {{ params: {{ size: 1000, total: {items} }}, paginate: page(page, 1000) }}
    store response -> items {{ key: toString(.id) }}
  }}
  action Hammer {{
    concurrency: 50
    for item in items parallel {{
      get "/items/{{item.id}}"
      store response -> results {{ key: toString(.id) }}
    }}
  }}
  run List then Hammer
"""




def startup_body() -> str:
    return """
  action One {
    get "/items/1"
    store response -> items { key: toString(.id) }
  }
  run One
"""


@dataclass
class Timing:
    """Best wall clock and largest peak RSS of one command over the repetitions."""

    wall_s: float = float("inf")
    cpu_s: float = float("inf")  # user + system time of the process: less disturbed by other load
    peak_mb: float = 0.0
    work_s: float = float("inf")  # reqon only: the stages' own durations, from --json-log

    def add(self, wall: float, cpu: float, peak: float, work: float | None = None) -> None:
        self.wall_s = min(self.wall_s, wall)
        self.cpu_s = min(self.cpu_s, cpu)
        self.peak_mb = max(self.peak_mb, peak)
        if work is not None:
            self.work_s = min(self.work_s, work)


@dataclass
class Scenario:
    name: str
    body: str
    server: str  # "slow" (20 ms) or "fast" (zero latency)
    requests: int
    ideal_s: float
    items: int
    reqon: Timing = field(default_factory=Timing)
    httpx: Timing = field(default_factory=Timing)
    ts: Timing = field(default_factory=Timing)


def scenarios(items: int) -> dict[str, Scenario]:
    latency = LATENCY_MS / 1000
    pages = items // 1000 + 1  # the last page is the short one that ends the listing
    many = max(items, 5000)
    return {
        "startup": Scenario("startup", startup_body(), "slow", 1, latency, 1),
        "fanout": Scenario("fanout", fanout_body(items, False), "slow", pages + items,
                           (pages + items) * latency, items),
        "fanout_par": Scenario("fanout_par", fanout_body(items, True), "slow", pages + items,
                               (pages + -(-items // 10)) * latency, items),
        "wide": Scenario("wide", wide_body(10, 20), "slow", 10 * 21, 21 * latency, 0),
        "throughput": Scenario("throughput", throughput_body(many), "fast", many // 1000 + 1 + many, 0.0, many),
    }


def timed(command: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """Run a command; its wall clock (s), CPU time (s), peak RSS (MB) and stderr. A failure stops the bench."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd)
    assert process.stderr is not None
    err = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{shlex.join(command)} failed ({code}):\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, err


def stage_seconds(log: str) -> float:
    """Sum of the stage durations in a `--json-log`: the work, without start-up and shutdown."""
    total = 0.0
    for line in log.splitlines():
        event = json.loads(line)
        if event.get("event") == "stage.end":
            total += event["durationMs"] / 1000
    return total


def compile_bytecode() -> None:
    """Time reqon as installed from a wheel, with its bytecode written: an editable install run
    under PYTHONDONTWRITEBYTECODE would otherwise compile every module in every process."""
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "reqon"), quiet=1)


SHORT = ("startup", "wide")  # under a second: run four times as often, since one disturbance ruins a run


def measure(s: Scenario, url: str, workdir: Path, repeat: int, ts: list[str] | None) -> None:
    path = workdir / f"{s.name}.vague"
    path.write_text(_mission(s.name.title().replace("_", ""), s.body, url))
    reqon = str(Path(sys.executable).with_name("reqon"))
    floor = str(Path(__file__).with_name("httpx_floor.py"))
    for _ in range(repeat * 4 if s.name in SHORT else repeat):  # interleaved: both see the same load
        data = str(workdir / "data")
        wall, cpu, peak, log = timed([reqon, "run", str(path), "--json-log", "--no-progress",
                                      "--data-dir", data], workdir)
        s.reqon.add(wall, cpu, peak, stage_seconds(log))
        wall, cpu, peak, _ = timed([sys.executable, floor, s.name, url, "--items", str(s.items)], workdir)
        s.httpx.add(wall, cpu, peak)
        if ts:
            wall, cpu, peak, _ = timed([*ts, str(path)], workdir)
            s.ts.add(wall, cpu, peak)


def row(s: Scenario, with_ts: bool) -> str:
    ideal = f"{s.ideal_s:.2f}" if s.ideal_s else "—"
    of_ideal = f" ({s.reqon.wall_s / s.ideal_s:.2f}x)" if s.ideal_s else ""
    extra = ""
    if s.name == "throughput":
        extra = f" {s.items / s.reqon.work_s:,.0f} it/s in process"
    cells = [s.name, f"{s.requests:,}", ideal, f"{s.reqon.work_s:.3f}", f"{s.reqon.wall_s:.3f}{of_ideal}",
             f"{s.httpx.wall_s:.3f}", f"{s.reqon.wall_s / s.httpx.wall_s:.2f}x",
             f"{s.reqon.cpu_s:.3f}", f"{s.httpx.cpu_s:.3f}", f"{s.reqon.peak_mb:.0f}", f"{s.httpx.peak_mb:.0f}"]
    if with_ts:
        cells.append(f"{s.ts.wall_s:.3f}")
    return "| " + " | ".join(cells) + " |" + extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", nargs="*", default=["startup", "fanout", "fanout_par", "wide", "throughput"])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--full", action="store_true", help="the issue's size: 2,008 items (2,011 requests)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    items = 2008 if args.full else args.items
    ts = shlex.split(os.environ["REQON_TS"]) if os.environ.get("REQON_TS") else None
    compile_bytecode()
    table = scenarios(items)
    slow, fast = Server(LATENCY_MS), Server(0)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            header = ["scenario", "requests", "ideal s", "reqon in-process s", "reqon process s",
                      "httpx script process s", "reqon / httpx", "reqon CPU s", "httpx CPU s",
                      "reqon peak MB", "httpx peak MB"]
            if ts:
                header.append("TS process s")
            print(f"best of {args.repeat} ({4 * args.repeat} for {' and '.join(SHORT)}), wall clock and CPU time "
                  f"each; peak RSS is the largest of the runs; "
                  f"load average before: {os.getloadavg()[0]:.1f}\n")
            print("| " + " | ".join(header) + " |")
            print("|---|" + "---:|" * (len(header) - 1))
            for name in args.scenario:
                s = table[name]
                measure(s, (slow if s.server == "slow" else fast).url, Path(tmp), args.repeat, ts)
                print(row(s, ts is not None), flush=True)
    finally:
        slow.close()
        fast.close()


if __name__ == "__main__":
    main()
