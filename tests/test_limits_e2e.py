"""Issue 5 through whole missions: one source's limits hold across parallel branches.

The unit tests of `reqon/http/ratelimit.py` and `breaker.py` drive a SourceClient
directly; these run `reqon run` with several branches sharing a source and count, at
the server, what actually arrived.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run_mission_text


def _windows(times: list[float], width: float = 1.0) -> int:
    """The largest number of arrivals inside any window of `width` seconds."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= width:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_a_rate_limit_of_5_per_second_is_shared_by_4_parallel_branches(demo_server: Any, tmp_path: Path) -> None:
    demo_server.stats.reset()
    actions = "\n".join(f"""  action Reader{b} {{
    for n in [{", ".join(str(b * 10 + i) for i in range(3))}] {{
      get "/items/{{n}}"
      store response -> seen {{ key: toString(.id) }}
    }}
  }}""" for b in range(4))
    text = f"""
mission Polite {{
  source Api {{ auth: none, base: env("DEMO_URL"), rateLimit: {{ requestsPerMinute: 300 }} }}
  store seen: memory("seen")
{actions}
  run [Reader0, Reader1, Reader2, Reader3]
}}
"""
    result = run_mission_text(text, tmp_path, url=demo_server.url)
    assert result.code == 0, result.stderr
    assert len(result.stores["seen"]) == 12
    arrivals = [a.at for a in demo_server.stats.arrivals if a.target.startswith("/items/")]
    assert len(arrivals) == 12
    # 12 starts spaced 200 ms apart by the client; 0.2 s of slack for how a loaded machine
    # delays their arrival at the server
    assert _windows(arrivals, 0.8) <= 5
    assert max(arrivals) - min(arrivals) >= 11 * 0.2 * 0.8


def test_max_in_flight_holds_across_branches_and_loops(make_server: Any, tmp_path: Path) -> None:
    server = make_server()
    text = """
mission Gentle {
  source Api { auth: none, base: env("DEMO_URL"), maxInFlight: 3 }
  action A { for n in [1, 2, 3, 4, 5, 6] parallel { get "/hold" { params: { group: "g", n: 3, i: n } } } }
  action B { for n in [7, 8, 9, 10, 11, 12] parallel { get "/hold" { params: { group: "g", n: 3, i: n } } } }
  run [A, B]
}
"""
    result = run_mission_text(text, tmp_path, url=server.url)
    assert result.code == 0, result.stderr
    assert server.stats.total == 12
    assert server.stats.peak_in_flight == 3


def test_an_open_circuit_spares_the_server(make_server: Any, tmp_path: Path) -> None:
    server = make_server(fail_paths={"/items/1": 503})
    text = """
mission Breaker {
  source Api {
    auth: none, base: env("DEMO_URL"),
    circuitBreaker: { failureThreshold: 2, failureWindow: 1m, resetTimeout: 1m }
  }
  action Hammer {
    for n in [1, 2, 3, 4, 5] { get "/items/1" { retry: { maxAttempts: 3, initialDelay: 10ms } } }
  }
  run Hammer
}
"""
    result = run_mission_text(text, tmp_path, url=server.url)
    assert result.code == 1
    assert "circuit-open" in result.stderr
    assert server.stats.count("/items/1") == 2  # the third attempt never reached the server
