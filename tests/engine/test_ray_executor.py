"""`--executor ray` beyond the parallel suite (issue 15): what only a cluster can get wrong.

The parallel suite (tests/test_parallel.py) runs every §7 rule on both executors.
Here: Ray listens on loopback only, a rate limit holds across workers, secrets never
reach Ray's files, a killed worker fails only its units and `--resume` completes the
run, and the clear failures (exit 3, no traceback) when Ray is missing, too old or
unreachable. Ray is the session's local instance (`ray_cluster`); runs that need
their own process join it by address.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reqon.demo.server import ThreadedServer
from tests.conftest import MakeServer, RayCluster, run_mission_text, start_reqon_run

pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]

SOURCE = 'source Api { auth: none, base: env("DEMO_URL") }'
REPO = Path(__file__).resolve().parents[2]


def _loop_mission(name: str, count: int, ms: int, store: str = 'memory("done")', concurrency: int = 4,
                  source: str = SOURCE) -> str:
    return f"""mission {name} {{
  {source}
  store done: {store}
  action Loop {{
    concurrency: {concurrency}
    for n in [{", ".join(str(i) for i in range(count))}] parallel {{
      get "/slow" {{ params: {{ ms: {ms}, n: n }} }}
      store {{ id: n, slept: response.slept }} -> done
    }}
  }}
  run Loop
}}
"""


def _listeners() -> list[tuple[str, str]]:
    """(local address, command line) of every listening TCP socket whose process is Ray's."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        if "pid=" not in line:
            continue
        pid = line.split("pid=", 1)[1].split(",", 1)[0]
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "ray" in cmdline or "gcs_server" in cmdline:
            found.append((fields[3], cmdline[:80]))
    return found


def test_ray_listens_on_loopback_only(ray_cluster: RayCluster, tmp_path: Path, make_server: MakeServer) -> None:
    server = make_server()
    result = run_mission_text(_loop_mission("Ports", 8, 10), tmp_path, "--executor", "ray", url=server.url)
    assert result.code == 0, result.stderr
    listeners = _listeners()
    assert listeners, "no listening socket of Ray found: is ss showing processes?"
    outside = [(address, cmd) for address, cmd in listeners
               if not address.startswith(("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:"))]
    assert outside == []


def test_a_rate_limit_holds_across_the_workers(ray_cluster: RayCluster, tmp_path: Path,
                                               make_server: MakeServer) -> None:
    """600 requests per minute: starts at least 0.1 s apart, whichever worker sends them."""
    server = make_server()
    source = 'source Api { auth: none, base: env("DEMO_URL"), rateLimit: { requestsPerMinute: 600 } }'
    text = _loop_mission("Limited", 12, 5, concurrency=6, source=source)
    result = run_mission_text(text, tmp_path, "--executor", "ray", url=server.url)
    assert result.code == 0, result.stderr
    starts = sorted(a.at for a in server.stats.arrivals if a.target.startswith("/slow"))
    assert len(starts) == 12
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    # Spaced by one limiter for the whole cluster: a limiter per worker would let two workers
    # start together (gaps near 0) and finish in half the time. The server's clock adds the
    # jitter of the trip from the gatekeeper's decision to the server, hence the slack.
    assert min(gaps) >= 0.05, gaps
    assert starts[-1] - starts[0] >= 11 * 0.1 * 0.95, gaps


def test_secrets_never_reach_rays_files(ray_cluster: RayCluster, tmp_path: Path, make_server: MakeServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    token = "tok-" + os.urandom(12).hex()
    monkeypatch.setenv("REQON_API_TOKEN", token)
    server = make_server()
    text = """mission Secret {
  source Api { auth: bearer, base: env("DEMO_URL") }
  store seen: memory("seen")
  action A { post "/echo" { body: { b: "A" } }
    store { id: "A", bearer: response.headers.Authorization != null } -> seen }
  action B { post "/echo" { body: { b: "B" } }
    store { id: "B", bearer: response.headers.Authorization != null } -> seen }
  run [A, B]
}
"""
    result = run_mission_text(text, tmp_path, "--executor", "ray", "--json-log", url=server.url)
    assert result.code == 0, result.stderr
    assert result.stores["seen"] == [{"id": "A", "bearer": True}, {"id": "B", "bearer": True}]
    assert token not in result.stderr + result.stdout
    leaked = [p for p in ray_cluster.temp_dir.rglob("*") if p.is_file() and _contains(p, token.encode())]
    assert leaked == []


def _contains(path: Path, needle: bytes) -> bool:
    try:
        return needle in path.read_bytes()
    except OSError:
        return False


def test_a_killed_worker_fails_its_units_and_resume_completes_the_run(ray_cluster: RayCluster, tmp_path: Path,
                                                                      make_server: MakeServer) -> None:
    server = make_server()
    mission = tmp_path / "kill.vague"
    mission.write_text(_loop_mission("Kill", 40, 150, store='file("done")'))
    data, output = tmp_path / "data", tmp_path / "out.json"
    args = ("--executor", "ray", "--ray-address", ray_cluster.address, "--json-log")
    process = start_reqon_run(mission, data, output, server.url, *args)
    assert process.stderr is not None
    pids = _worker_pids(process)
    _wait_for(lambda: server.stats.count("/slow") >= 8, process)
    os.kill(pids[0], signal.SIGKILL)  # a worker process this run started
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "the Ray worker running this unit died" in stderr
    first = json.loads(output.read_text())["done"]
    assert first, "no iteration completed before the kill"
    assert all(r == {"id": r["id"], "slept": 150} for r in first)  # intact records only

    server.stats.reset()
    process = start_reqon_run(mission, data, output, server.url, *args, "--resume")
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr
    done = json.loads(output.read_text())["done"]
    assert sorted(r["id"] for r in done) == list(range(40))
    assert all(r["slept"] == 150 for r in done)
    assert server.stats.count("/slow") <= 40 - len(first)  # what the first run completed is not fetched again


def _worker_pids(process: subprocess.Popen[str]) -> list[int]:
    assert process.stderr is not None
    for line in process.stderr:
        if '"executor"' in line:
            return list(json.loads(line)["workers"])
    raise AssertionError(f"no executor event; exit {process.wait()}")


def _wait_for(condition: object, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert process.poll() is None, "the run ended before the worker could be killed"
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.02)


# --------------------------------------------------------------------------- clear failures (exit 3)


def _run_without(tmp_path: Path, shim: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """`reqon run --executor ray` in a process where `import ray` finds `shim` (or the real Ray)."""
    env = dict(os.environ, DEMO_URL="http://127.0.0.1:9")
    if shim is not None:
        fake = tmp_path / "shim" / "ray"
        fake.mkdir(parents=True)
        (fake / "__init__.py").write_text(shim)
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "shim"), str(REPO)])
    mission = tmp_path / "m.vague"
    mission.write_text(_loop_mission("Fails", 2, 1))
    return subprocess.run([sys.executable, "-m", "reqon.cli", "run", str(mission), "--data-dir", str(tmp_path / "d"),
                           "--executor", "ray", *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=90)


def test_without_the_extra_exit_3_names_the_install_command(tmp_path: Path) -> None:
    result = _run_without(tmp_path, "raise ImportError(\"No module named 'ray'\")\n")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == ("reqon: configuration error: --executor ray needs Ray, which is not installed: "
                                     "pip install 'reqon[ray]'")


def test_an_unsupported_ray_version_is_refused(tmp_path: Path) -> None:
    result = _run_without(tmp_path, "__version__ = '1.13.0'\n")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "Ray 1.13.0 is not supported: reqon[ray] needs Ray 2.9 or newer, before 3.0" in result.stderr


def test_an_unreachable_address_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = _run_without(tmp_path, None, "--ray-address", f"127.0.0.1:{port}")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused" in result.stderr
    assert time.monotonic() - started < 60


def test_the_server_sees_a_cancelled_remote_branch_aborted(ray_cluster: RayCluster, tmp_path: Path,
                                                           make_server: MakeServer) -> None:
    """fail-fast on Ray: the failing branch cancels its slow sibling on another worker mid-request."""
    server: ThreadedServer = make_server()
    text = f"""mission FailFast {{
  {SOURCE}
  store done: memory("done")
  action Slow {{ get "/slow" {{ params: {{ ms: 5000 }} }} store {{ id: "slow" }} -> done }}
  action Fails {{ get "/fail" {{ params: {{ status: 500, ms: 300 }}, retry: {{ maxAttempts: 1 }} }} }}
  run [Slow, Fails] {{ mode: "fail-fast" }}
}}
"""
    result = run_mission_text(text, tmp_path, "--executor", "ray", url=server.url)
    assert result.code == 1
    assert result.elapsed_s < 4.0  # long before the sibling's 5 s
    assert result.stores["done"] == []
    deadline = time.monotonic() + 5
    while server.stats.aborted < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stats.aborted == 1
    assert server.stats.in_flight == 0


def test_remote_units_read_snapshots_of_stores_and_their_own_writes(ray_cluster: RayCluster, tmp_path: Path,
                                                                    make_server: MakeServer) -> None:
    server = make_server()
    text = f"""mission Reads {{
  {SOURCE}
  store items: memory("items")
  store out: memory("out")
  action Fill {{ store [{{ id: "a", v: 1 }}, {{ id: "b", v: 2 }}] -> items }}
  action Lookup {{
    get "/slow" {{ params: {{ ms: 10 }} }}
    store {{ id: "lookup", b: items["b"].v, count: length(items) }} -> out
  }}
  action Grow {{
    store {{ id: "c", v: 3 }} -> items
    store {{ id: "grow", seen: length(items), c: items["c"].v }} -> out
  }}
  action Loop {{
    concurrency: 2
    for k in ["a", "b"] parallel {{
      store {{ id: "loop-" + k, v: items[k].v }} -> out
    }}
  }}
  run Fill then [Lookup, Grow] then Loop
}}
"""
    result = run_mission_text(text, tmp_path, "--executor", "ray", url=server.url)
    assert result.code == 0, result.stderr
    out = result.keyed("out", "id")
    assert out["lookup"] == {"id": "lookup", "b": 2, "count": 2}  # the snapshot taken when it started
    assert out["grow"] == {"id": "grow", "seen": 3, "c": 3}  # its own write on top of it
    assert out["loop-a"]["v"] == 1 and out["loop-b"]["v"] == 2
    assert sorted(r["id"] for r in result.stores["items"]) == ["a", "b", "c"]  # written once, by the driver


def test_a_mission_with_wait_is_refused_on_ray(ray_cluster: RayCluster, tmp_path: Path) -> None:
    text = """mission Waits {
  store s: memory("s")
  action Hold { wait { path: "/cb", timeout: 1s } store { id: "x" } -> s }
  run Hold
}
"""
    result = run_mission_text(text, tmp_path, "--executor", "ray", "--webhook", "--webhook-port", "0")
    assert result.code == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert ("action Hold uses 'wait', which --executor ray does not run yet (the webhook server lives on the "
            "driver): run it with the local executor") in result.stderr


# --------------------------------------------------------------------------- proxies on the workers

PROXIED = """mission RayProxied {
  source Far { auth: none, base: env("FAR_URL"), headers: { Connection: "close" } }
  source Near { auth: none, base: env("NEAR_URL") }
  store out: memory("out")
  action Fetch {
    concurrency: 4
    for n in [{ far: 1, near: 11 }, { far: 2, near: 12 }, { far: 3, near: 13 }, { far: 4, near: 14 }] parallel {
      get "/items/{n.far}" { source: Far }
      store response -> out
      get "/items/{n.near}" { source: Near }
      store response -> out
    }
  }
  run Fetch
}
"""


def _run_with_worker_env(tmp_path: Path, server: ThreadedServer, cluster: RayCluster, worker_env: dict[str, str],
                         *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`reqon run --executor ray` joining the session's cluster as a job whose workers get
    `worker_env`, the way `ray job submit --runtime-env-json` hands a job its environment (the
    driver's own environment has no proxy variable: a worker reads only its own, docs/http.md)."""
    mission, output = tmp_path / "proxied.vague", tmp_path / "out.json"
    mission.write_text(PROXIED)
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                                                    "no_proxy", "reqon_debug")}
    env.update(FAR_URL=server.url, NEAR_URL=f"http://localhost:{server.port}",  # NO_PROXY names localhost
               RAY_JOB_CONFIG_JSON_ENV_VAR=json.dumps({"runtime_env": {"env_vars": worker_env}}))
    result = subprocess.run(
        [sys.executable, "-m", "reqon.cli", "run", str(mission), "--data-dir", str(tmp_path / "data"),
         "--output", str(output), "--executor", "ray", "--ray-address", cluster.address, *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=100)
    return result, output


def test_worker_requests_honour_the_workers_proxy_variables_and_no_proxy(
        ray_cluster: RayCluster, tmp_path: Path, make_server: MakeServer) -> None:
    """Every request of this mission is a worker's (the driver sends none): the proxy's log
    shows each one to the proxied host, and the server saw the NO_PROXY host's directly."""
    from tests.http.test_proxies import ForwardProxy

    server = make_server()
    proxy = ForwardProxy(tmp_path)
    try:
        worker_env = {"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "localhost"}
        result, output = _run_with_worker_env(tmp_path, server, ray_cluster, worker_env)
        assert result.returncode == 0, result.stderr
        assert sorted(r["id"] for r in json.loads(output.read_text())["out"]) == [1, 2, 3, 4, 11, 12, 13, 14]
        assert sorted(proxy.forwarded(4)) == [f"127.0.0.1:{server.port}/items/{n}" for n in (1, 2, 3, 4)]
        assert all(server.stats.count(f"/items/{n}") == 1 for n in (11, 12, 13, 14))  # directly, once each

        result, _ = _run_with_worker_env(tmp_path, server, ray_cluster, worker_env, "--no-proxy")
        assert result.returncode == 0, result.stderr
        assert all(server.stats.count(f"/items/{n}") == 2 for n in (1, 2, 3, 4))  # the second run's arrived
        assert len(proxy.forwarded()) == 4  # none of them through the proxy
    finally:
        proxy.close()


def test_a_proxy_password_never_shows_in_a_worker_error(ray_cluster: RayCluster, tmp_path: Path,
                                                         make_server: MakeServer) -> None:
    from tests.http.test_proxies import ForwardProxy

    server = make_server()
    guarded = ForwardProxy(tmp_path, "--basic-auth", "reqon:right-proxy-pass")
    try:
        wrong = "wrong-proxy-pass-" + os.urandom(6).hex()
        worker_env = {"HTTP_PROXY": f"http://reqon:{wrong}@127.0.0.1:{guarded.port}", "NO_PROXY": "localhost"}
        result, _ = _run_with_worker_env(tmp_path, server, ray_cluster, worker_env, "--verbose")
        assert result.returncode == 1, result.stderr
        assert "407" in result.stderr, result.stderr
        assert wrong not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr

        worker_env = {"HTTP_PROXY": f"http://reqon:{wrong}@127.0.0.1:99999"}  # the worker cannot even open the run
        result, _ = _run_with_worker_env(tmp_path, server, ray_cluster, worker_env)
        assert result.returncode == 3, result.stderr
        assert "the Ray workers did not start: the proxy http://***@127.0.0.1:99999 of the environment is not " \
               "a valid URL" in result.stderr, result.stderr
        assert wrong not in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
    finally:
        guarded.close()
