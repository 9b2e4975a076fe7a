"""bench/executors: the Ray executor against the local one (issue 15; figures in docs/scaling.md).

Scenarios (the API runs in a separate process; latency is the server's `asyncio.sleep`):

* fanout50    2,000 item GETs at 20 ms in a `for … parallel` loop, concurrency 50 (local executor)
* fanout_ray  the same with `--executor ray` on a local Ray instance started by the run
* fanout_ray4 the same on a simulated 4-node cluster (`ray.cluster_utils.Cluster`, one CPU per node)
* unit_local  100 trivial branches one after another (`maxConcurrency: 1`): a unit's round trip
* unit_ray    the same with `--executor ray`: driver to worker and back

Work time is the stage's duration from `--json-log`; the table shows the best of `--repeat`
runs (a shared machine) and the `reqon run` process's CPU time. `--ray` adds the start-up
cost of `--executor ray` (a local Ray instance and its workers).

Run:  .venv/bin/python -m bench.executors [--scenario NAME ...] [--repeat 3] [--ray]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.engine import LATENCY_MS, Server, _mission

SCENARIOS = ("unit_local", "unit_ray", "fanout50", "fanout_ray", "fanout_ray4")


@dataclass
class Result:
    name: str
    stage_s: float
    ideal_s: float
    process_s: float
    peak_mb: float
    extra: str = ""
    cpu_s: float = 0.0

    def row(self) -> str:
        ratio = f"{self.stage_s / self.ideal_s:.3f}x" if self.ideal_s else "—"
        ideal = f"{self.ideal_s:.2f}" if self.ideal_s else "—"
        return (f"| {self.name} | {self.stage_s:.2f} | {ideal} | {ratio} | {self.process_s:.2f} | "
                f"{self.cpu_s:.2f} | {self.peak_mb:.0f} | {self.extra} |")


def fanout50_body(items: int) -> str:
    return f"""
  action List {{
    get "/pages" {{ params: {{ size: 1000, total: {items} }}, paginate: page(page, 1000) }}
    store response -> items {{ key: toString(.id) }}
  }}
  action Fetch {{
    concurrency: 50
    for item in items parallel {{
      get "/items/{{item.id}}"
    }}
  }}
  run List then Fetch
"""


def run_reqon(mission: str, workdir: Path, *extra: str) -> tuple[dict[int, float], float, float]:
    """Run a mission; return stage durations (s) from the JSON log, wall time and peak RSS (MB)."""
    path = workdir / "bench.vague"
    path.write_text(mission)
    reqon = Path(sys.executable).with_name("reqon")
    started = time.perf_counter()
    process = subprocess.Popen([str(reqon), "run", str(path), "--json-log", "--no-progress",
                                "--data-dir", str(workdir / "data"), *extra],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=workdir)
    assert process.stderr is not None
    log = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"reqon run failed ({process.returncode}):\n{log[-2000:]}")
    stages = {}
    for line in log.splitlines():
        event = json.loads(line)
        if event.get("event") == "stage.end":
            stages[event["stage"]] = event["durationMs"] / 1000
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    return stages, wall, usage.ru_maxrss / 1024


LAST_CPU = [0.0]  # CPU seconds (user + system) of the last `reqon run`: steadier than wall time under load


def scenario(name: str, server: Server, workdir: Path) -> Result:
    if name in ("unit_ray", "unit_local"):
        branches = "\n".join(f"  action B{i} {{ let x = {i} }}" for i in range(100))
        names = ", ".join(f"B{i}" for i in range(100))
        body = f"{branches}\n  run [{names}] {{ maxConcurrency: 1 }}\n"
        extra = ("--executor", "ray") if name == "unit_ray" else ()
        stages, wall, peak = run_reqon(_mission("Units", body, server.url), workdir, *extra)
        return Result(name, stages[1], 0.0, wall, peak, f"100 units in a row: {stages[1] * 10:.2f} ms per unit")
    return fanout50(name, 2000, server, workdir)


def fanout50(name: str, items: int, server: Server, workdir: Path) -> Result:
    """2,000 GETs of 20 ms at concurrency 50: ideal 0.8 s; with Ray, the per-unit overhead too."""
    extra: tuple[str, ...] = ()
    cluster = None
    if name == "fanout_ray":
        extra = ("--executor", "ray")
    elif name == "fanout_ray4":
        cluster = _four_nodes()
        extra = ("--executor", "ray", "--ray-address", cluster.address)
    try:
        stages, wall, peak = run_reqon(_mission("Fanout50", fanout50_body(items), server.url), workdir, *extra)
    finally:
        if cluster is not None:
            cluster.shutdown()
    ideal = items / 50 * LATENCY_MS / 1000
    note = f"{items} requests, concurrency 50"
    if extra:
        from reqon.engine.executors.ray_executor import MAX_CHUNK
        chunk = max(1, min(MAX_CHUNK, items // 200))
        note += f", {-(-items // chunk)} units of {chunk} iterations"
    return Result(name, stages[2], ideal, wall, peak, note)


def _four_nodes() -> object:
    """A simulated 4-node Ray cluster on this machine, loopback only, one CPU per node."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(3):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    return cluster


def ray_startup(workdir: Path) -> float:
    """What `--executor ray` adds to a run that starts its own local Ray instance (best of 3)."""
    path = workdir / "startup.vague"
    reqon = Path(sys.executable).with_name("reqon")
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([str(reqon), "run", str(path), "-q", "--data-dir", str(workdir / "data"),
                        "--executor", "ray"], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def startup(workdir: Path) -> float:
    path = workdir / "startup.vague"
    path.write_text('mission Startup {\n  store s: memory("s")\n  action Noop { let x = 1 store { id: x } -> s }\n'
                    "  run Noop\n}\n")
    reqon = Path(sys.executable).with_name("reqon")
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([str(reqon), "run", str(path), "-q", "--data-dir", str(workdir / "data")], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--ray", action="store_true", help="also measure the start-up of --executor ray")
    parser.add_argument("--repeat", type=int, default=1, help="best of N per scenario (a shared machine)")
    args = parser.parse_args()
    server = Server(LATENCY_MS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            print("| scenario | work s | ideal s | ratio | process s | CPU s | peak RSS MB | notes |")
            print("|---|---:|---:|---:|---:|---:|---:|---|")
            for name in args.scenario:
                runs = []
                for _ in range(args.repeat):
                    runs.append(scenario(name, server, workdir))
                    runs[-1].cpu_s = LAST_CPU[0]
                print(min(runs, key=lambda r: r.stage_s).row(), flush=True)
            if args.ray:
                local = startup(workdir)
                ray = ray_startup(workdir)
                print(f"\n`reqon run` start-up (trivial mission, best of 5): {local:.3f} s")
                print(f"`reqon run --executor ray` start-up (local Ray instance, best of 3): {ray:.3f} s "
                      f"({ray - local:+.3f} s)")
    finally:
        server.close()


if __name__ == "__main__":
    main()
