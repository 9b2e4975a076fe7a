"""bench/daemon: the scheduler daemon and the webhook server (issue 16).

* idle       a daemon with 50 scheduled missions, none due: CPU (% of one core, from
             /proc utime+stime over the window) and resident memory (VmRSS, VmHWM)
* latency    one mission `every 1 second` against the demo API in its own process: how
             long after its due time each run starts (from the daemon's `--json-log`
             events: a run's `time` minus the `nextDue` announced by the run before it)
* webhooks   a `wait` for N events; a client in this process POSTs them with 50 requests
             in flight; events accepted (202) per second of wall time. Client and server
             share the machine's 2 cores, so this is a lower bound for the server.

Run:  .venv/bin/python -m bench.daemon [--idle-s 20] [--latency-s 60] [--events 20000]
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _reqon(*args: str, stderr: object, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "reqon.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=stderr, cwd=ROOT, env=env or dict(os.environ))  # type: ignore[arg-type]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _wait_for(path: Path, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text("utf-8", errors="replace"):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {text!r} in {path}")
        time.sleep(0.05)


def idle(seconds: float, work: Path) -> str:
    missions = "\n".join(
        f'mission M{i} {{\n  schedule: every {1 + i % 5} hours\n  runImmediately: false\n'
        f'  action A {{ let x = {i} }}\n  run A\n}}' for i in range(50))
    path = work / "idle.vague"
    path.write_text(missions, encoding="utf-8")
    log = work / "idle.log"
    with log.open("w") as err:
        process = _reqon("run", str(path), "--daemon", "--data-dir", str(work / "idle-data"), stderr=err)
        try:
            _wait_for(log, "scheduling 50 missions")
            time.sleep(2.0)  # let start-up settle
            cpu0, t0 = _cpu_s(process.pid), time.monotonic()
            time.sleep(seconds)
            cpu1, t1 = _cpu_s(process.pid), time.monotonic()
            rss, hwm = _status_kb(process.pid, "VmRSS"), _status_kb(process.pid, "VmHWM")
        finally:
            process.terminate()
            process.wait()
    percent = 100 * (cpu1 - cpu0) / (t1 - t0)
    return (f"| idle, 50 missions | {t1 - t0:.0f} s window | CPU {percent:.2f} % of one core | "
            f"RSS {rss / 1024:.1f} MB (peak {hwm / 1024:.1f} MB) |")


def latency(seconds: float, work: Path) -> str:
    api_log = work / "api.log"
    with api_log.open("w") as out:
        api = subprocess.Popen([sys.executable, "-m", "reqon.demo", "--port", "0"], stdout=out,
                               stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        _wait_for(api_log, "listening on")
        url = api_log.read_text().split("listening on ", 1)[1].split()[0]
        path = work / "latency.vague"
        path.write_text('mission Tick {\n  schedule: every 1 second\n  source Api { auth: none, base: env("API") }\n'
                        '  action A { get "/items/1" }\n  run A\n}\n', encoding="utf-8")
        log = work / "latency.log"
        with log.open("w") as err:
            daemon = _reqon("run", str(path), "--daemon", "--json-log", "--data-dir", str(work / "lat-data"),
                            stderr=err, env=dict(os.environ, API=url))
            time.sleep(seconds + 2)
            daemon.terminate()
            daemon.wait()
    finally:
        api.terminate()
        api.wait()
    starts = [json.loads(line) for line in log.read_text().splitlines() if '"schedule.run.start"' in line]
    late_ms = []
    for before, run in zip(starts, starts[1:]):
        due = dt.datetime.fromisoformat(before["nextDue"].replace("Z", "+00:00"))
        began = dt.datetime.fromisoformat(run["time"].replace("Z", "+00:00"))
        late_ms.append((began - due).total_seconds() * 1000)
    late_ms.sort()
    p90 = late_ms[int(0.9 * (len(late_ms) - 1))]
    return (f"| due-run start latency, every 1 second | {len(late_ms)} runs | median {statistics.median(late_ms):.1f} ms"
            f" | p90 {p90:.1f} ms, max {late_ms[-1]:.1f} ms |")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _blast(url: str, events: int, in_flight: int) -> tuple[float, int]:
    import aiohttp
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
        while True:  # until the wait step has registered its path
            async with session.post(url, data=b"0", headers={"Content-Type": "application/json"}) as r:
                if r.status == 202:
                    break
            await asyncio.sleep(0.05)
        accepted = 0
        queue = iter(range(1, events))

        async def worker() -> None:
            nonlocal accepted
            for n in queue:
                async with session.post(url, data=str(n).encode(), headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    accepted += r.status == 202
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return time.perf_counter() - started, accepted


def webhooks(events: int, work: Path) -> str:
    port = _free_port()
    path = work / "hooks.vague"
    path.write_text('mission Hooks {\n  action A {\n    wait { path: "/bench", timeout: 10m, expectedEvents: %d }\n'
                    '  }\n  run A\n}\n' % events, encoding="utf-8")
    log = work / "hooks.log"
    with log.open("w") as err:
        process = _reqon("run", str(path), "--webhook-port", str(port), "--data-dir", str(work / "hooks-data"),
                         stderr=err)
        try:
            _wait_for(log, "webhook server listening")
            cpu0 = _cpu_s(process.pid)
            elapsed, accepted = asyncio.run(_blast(f"http://127.0.0.1:{port}/bench", events, 50))
            server_cpu = _cpu_s(process.pid) - cpu0
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    return (f"| webhook events while a mission waits | {accepted + 1} accepted, exit {code} | "
            f"{accepted / elapsed:,.0f} events/s wall | {accepted / server_cpu:,.0f} events per CPU-second of the "
            f"server; 50 in flight, client on the same 2 cores |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.daemon")
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--latency-s", type=float, default=60.0)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("| scenario | size | figure | notes |\n|---|---|---|---|")
        print(idle(args.idle_s, work), flush=True)
        print(latency(args.latency_s, work), flush=True)
        print(webhooks(args.events, work), flush=True)


if __name__ == "__main__":
    main()
