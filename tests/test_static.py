"""Static checks as tests, so CI keeps them: mypy on the package, ruff's pyflakes rules everywhere."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"{module} is not installed (it is in the 'dev' extra)")


@pytest.mark.timeout(300)
def test_mypy_finds_no_type_errors_in_the_package() -> None:
    _tool("mypy")
    done = subprocess.run([sys.executable, "-m", "mypy", "reqon"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:]


def test_pyflakes_rules_pass_everywhere() -> None:
    _tool("ruff")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "reqon", "tests", "bench", "editors"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
