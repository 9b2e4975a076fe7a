"""HTTP(S)_PROXY and NO_PROXY, through a real forward proxy (the `proxy.py` package) that
the test starts on 127.0.0.1; its access log says which requests went through it (one
line per connection: the proxied source asks for `Connection: close`, so that every request
gets a line)."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reqon.demo.server import ThreadedServer
from tests.conftest import run_mission_text

pytestmark = pytest.mark.timeout(120)

PROXY_PASSWORD = "s3cret-proxy-pass"


class ForwardProxy:
    def __init__(self, tmp_path: Path, *args: str) -> None:
        port_file = tmp_path / "proxy.port"
        self.log = tmp_path / "proxy.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0", "--port-file",
                 str(port_file), "--num-workers", "1", "--num-acceptors", "1", "--log-level", "INFO", *args],
                stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.05)
        self.port = int(port_file.read_text())

    def forwarded(self, expected: int = 0) -> list[str]:
        """The targets in the access log, once it holds `expected` of them (it is written
        after each answer, by another process)."""
        deadline = time.monotonic() + 30
        while True:
            targets = re.findall(r"access_log:\d+ - \S+ - [A-Z]+ (\S+) - ", self.log.read_text("utf-8", "replace"))
            if len(targets) >= expected or time.monotonic() > deadline:
                return targets
            time.sleep(0.05)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ForwardProxy]:
    started = ForwardProxy(tmp_path)
    yield started
    started.close()


MISSION = """
mission Proxied {
  source Far { auth: none, base: env("FAR_URL"), headers: { Connection: "close" } }
  source Near { auth: none, base: env("NEAR_URL") }
  store out: memory("out")
  action Fetch {
    for n in [1, 2, 3] { get "/items/{n}" { source: Far } store response -> out }
    get "/items/9" { source: Near }
    store response -> out
  }
  run Fetch
}
"""


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def urls(monkeypatch: pytest.MonkeyPatch, server: ThreadedServer) -> None:
    monkeypatch.setenv("FAR_URL", server.url)  # http://127.0.0.1:port
    monkeypatch.setenv("NEAR_URL", f"http://localhost:{server.port}")


def test_requests_go_through_the_proxy_except_no_proxy_hosts(
        tmp_path: Path, proxy: ForwardProxy, demo_server: ThreadedServer, clean_proxy_env: pytest.MonkeyPatch) -> None:
    demo_server.stats.reset()
    urls(clean_proxy_env, demo_server)
    clean_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    clean_proxy_env.setenv("NO_PROXY", "localhost")
    result = run_mission_text(MISSION, tmp_path, url=demo_server.url)
    assert result.code == 0, result.stderr
    assert [r["id"] for r in result.stores["out"]] == [1, 2, 3, 9]
    assert sorted(proxy.forwarded(3)) == [f"127.0.0.1:{demo_server.port}/items/{n}" for n in (1, 2, 3)]
    assert demo_server.stats.count("/items/9") == 1  # reached directly


def test_no_proxy_flag_connects_directly(
        tmp_path: Path, proxy: ForwardProxy, demo_server: ThreadedServer, clean_proxy_env: pytest.MonkeyPatch) -> None:
    urls(clean_proxy_env, demo_server)
    clean_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    result = run_mission_text(MISSION, tmp_path, "--no-proxy", url=demo_server.url)
    assert result.code == 0, result.stderr
    assert proxy.forwarded() == []


def test_proxy_credentials_are_used_and_never_shown(tmp_path: Path, demo_server: ThreadedServer,
                                                     clean_proxy_env: pytest.MonkeyPatch) -> None:
    guarded = ForwardProxy(tmp_path, "--basic-auth", f"reqon:{PROXY_PASSWORD}")
    try:
        urls(clean_proxy_env, demo_server)
        clean_proxy_env.setenv("NO_PROXY", "localhost")
        clean_proxy_env.setenv("HTTP_PROXY", f"http://reqon:{PROXY_PASSWORD}@127.0.0.1:{guarded.port}")
        result = run_mission_text(MISSION, tmp_path, url=demo_server.url)
        assert result.code == 0, result.stderr
        assert len(guarded.forwarded(3)) == 3

        wrong = "wrong-proxy-pass-42"
        clean_proxy_env.setenv("HTTP_PROXY", f"http://reqon:{wrong}@127.0.0.1:{guarded.port}")
        refused = run_mission_text(MISSION, tmp_path, "--verbose", url=demo_server.url)
        assert refused.code == 1
        assert "407" in refused.stderr, refused.stderr
        assert wrong not in refused.stderr and wrong not in refused.stdout
        assert "Traceback" not in refused.stderr
    finally:
        guarded.close()


@pytest.mark.parametrize("proxy_url", ["http://reqon:{pw}@127.0.0.1:99999", "http://reqon:{pw}@[::1",
                                       "http://reqon:p@{pw}@127.0.0.1:port"])
def test_a_malformed_proxy_url_is_a_configuration_error_that_hides_its_password(
        proxy_url: str, tmp_path: Path, demo_server: ThreadedServer, clean_proxy_env: pytest.MonkeyPatch) -> None:
    password = "malformed-proxy-pass"
    urls(clean_proxy_env, demo_server)
    clean_proxy_env.setenv("HTTP_PROXY", proxy_url.format(pw=password))
    result = run_mission_text(MISSION, tmp_path, url=demo_server.url)
    assert result.code == 3, result.stderr
    assert "configuration error: the proxy http://***@" in result.stderr
    assert "is not a valid URL" in result.stderr
    assert password not in result.stderr + result.stdout
    assert "p@" not in result.stderr  # no piece of the user information either


@pytest.mark.parametrize("variable", ["ALL_PROXY", "HTTP_PROXY"])
def test_a_socks_proxy_is_refused_by_name_instead_of_failing_later(
        variable: str, tmp_path: Path, demo_server: ThreadedServer, clean_proxy_env: pytest.MonkeyPatch) -> None:
    urls(clean_proxy_env, demo_server)
    clean_proxy_env.setenv(variable, "socks5://reqon:socks-pass@127.0.0.1:1080")
    demo_server.stats.reset()
    result = run_mission_text(MISSION, tmp_path, url=demo_server.url)
    assert result.code == 3, result.stderr
    assert "is a socks5:// proxy; reqon supports http:// and https:// proxies" in result.stderr
    assert "socks-pass" not in result.stderr + result.stdout
    assert demo_server.stats.total == 0  # refused before the first request


DOCUMENT_MISSION = """
mission ProxiedDocument {
  source Shop from "DOCUMENT_URL" { auth: none, base: env("DEMO_URL") }
  store books: memory("books")
  action List {
    call Shop.listBooks { params: { per_page: 5 } }
    store response.items -> books { key: .isbn }
  }
  run List
}
"""


def test_an_openapi_document_is_fetched_through_the_proxy_like_any_request(
        tmp_path: Path, proxy: ForwardProxy, demo_server: ThreadedServer, clean_proxy_env: pytest.MonkeyPatch) -> None:
    """§3.1.6: a document named by URL is fetched at mission start with the run's client,
    so the environment's proxy carries it (and the calls made from it)."""
    clean_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    mission = DOCUMENT_MISSION.replace("DOCUMENT_URL", f"{demo_server.url}/openapi.yaml")
    result = run_mission_text(mission, tmp_path, url=demo_server.url)
    assert result.code == 0, result.stderr
    assert len(result.stores["books"]) == 5
    forwarded = proxy.forwarded(2)
    assert f"127.0.0.1:{demo_server.port}/openapi.yaml" in forwarded, forwarded
    assert any(t.startswith(f"127.0.0.1:{demo_server.port}/books") for t in forwarded), forwarded


def test_no_proxy_flag_fetches_the_openapi_document_directly(
        tmp_path: Path, proxy: ForwardProxy, demo_server: ThreadedServer, clean_proxy_env: pytest.MonkeyPatch) -> None:
    clean_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    mission = DOCUMENT_MISSION.replace("DOCUMENT_URL", f"{demo_server.url}/openapi.yaml")
    result = run_mission_text(mission, tmp_path, "--no-proxy", url=demo_server.url)
    assert result.code == 0, result.stderr
    assert proxy.forwarded() == []
