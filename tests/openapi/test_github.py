"""A real published document: GitHub's OpenAPI description (about 13 MB of JSON, from the
npm package @octokit/openapi, fetched by `make test` into the git-ignored .cache/octokit-openapi).
Loaded, checked, and a mission calling two of its operations run against `reqon mock` of it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reqon.openapi import cache
from reqon.openapi.cache import load_file
from tests.conftest import run_mission_path
from tests.openapi.mock_process import ROOT, reqon_mock

GITHUB = ROOT / ".cache/octokit-openapi/api.github.com.json"
HOW = ("`make test` fetches it with npm; by hand: mkdir -p .cache/octokit-openapi && cd .cache/octokit-openapi && "
       "npm pack @octokit/openapi@23.0.2 && "
       "tar xzf octokit-openapi-23.0.2.tgz --strip-components=2 package/generated/api.github.com.json")

if not GITHUB.is_file():
    if os.environ.get("CI") == "true":
        pytest.fail(f"GitHub's OpenAPI document is missing: {GITHUB}; `make test` fetches it with npm", pytrace=False)
    print(f"\ntests/openapi/test_github.py skipped: {GITHUB} is missing; {HOW}", file=sys.stderr)
    pytest.skip(f"GitHub's OpenAPI document is missing ({HOW})", allow_module_level=True)

MISSION = f"""
mission GitHubIssues {{
  source GitHub from "{GITHUB}" {{
    auth: bearer {{ token: env("GITHUB_TOKEN", "no-token-needed-for-the-mock") }},
    base: env("DEMO_URL"),
    validateResponses: true
  }}
  store repos: memory("repos")
  store issues: memory("issues")
  action Repos {{
    call GitHub."repos/list-for-org" {{ params: {{ org: "octo-org", per_page: 30 }}, paginate: page(page, 30) }}
    store response -> repos
  }}
  action Issues {{
    for repo in repos {{
      call GitHub."issues/list-for-repo" {{ params: {{ owner: repo.owner.login, repo: repo.name, state: "open" }} }}
      store response -> issues
    }}
  }}
  run Repos then Issues
}}
"""


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "github-xdg"))  # shared: one parse


def test_loads_with_every_operation_indexed() -> None:
    cache._memo.clear()
    doc = load_file(GITHUB)
    assert doc.version == "3.0" and doc.base_url == "https://api.github.com"
    assert len(doc.operations) > 1000
    repos = doc.operations["repos/list-for-org"]
    assert (repos.method, repos.path, repos.path_parameters) == ("GET", "/orgs/{org}/repos", ("org",))
    assert doc.operations["issues/list-for-repo"].path_parameters == ("owner", "repo")


def test_check_passes_and_suggests_close_operation_ids(tmp_path: Path) -> None:
    mission = tmp_path / "github.vague"
    mission.write_text(MISSION)
    done = subprocess.run([sys.executable, "-m", "reqon.cli", "check", str(mission)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    mission.write_text(MISSION.replace('"issues/list-for-repo"', '"issues/list-for-repos"'))
    done = subprocess.run([sys.executable, "-m", "reqon.cli", "check", str(mission)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1
    assert "error[E213]: unknown operation 'issues/list-for-repos'" in done.stderr
    assert "did you mean 'issues/list-for-repo'?" in done.stderr


def test_the_mission_runs_against_reqon_mock_of_the_document(tmp_path: Path) -> None:
    mission = tmp_path / "github.vague"
    mission.write_text(MISSION)
    with reqon_mock(GITHUB) as mock:
        result = run_mission_path(mission, tmp_path, url=mock.url)
        log = mock.log()
    assert result.code == 0, result.stderr
    repos = result.stores["repos"]
    assert repos and all("full_name" in repo for repo in repos)  # the document's example
    assert result.stores["issues"]
    assert log[0].split()[:3] == ["GET", "/orgs/octo-org/repos?per_page=30&page=1", "200"]
    issue_lines = [line.split() for line in log[1:]]
    assert [(m, status, op) for m, _, status, op in issue_lines] == [("GET", "200", "issues/list-for-repo")] * len(repos)
    assert {path for _, path, _, _ in issue_lines} == {
        f"/repos/{repo['owner']['login']}/{repo['name']}/issues?state=open" for repo in repos}
