"""End to end: the real `reqon repl` in a pseudo-terminal (pexpect), and with piped standard input.

As pgcli's behave steps do, every expectation reads the screen output with the
ANSI sequences stripped, and a timeout shows everything seen so far.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>()][0-9A-Za-z]?|\r")


class Terminal:
    """A child process in a pty whose output is searched as plain text, from the last match on."""

    def __init__(self, child: pexpect.spawn) -> None:
        self.child = child
        self.seen = ""
        self.mark = 0

    def expect(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            at = self.seen.find(text, self.mark)
            if at >= 0:
                passed = self.seen[self.mark:at + len(text)]
                self.mark = at + len(text)
                return passed
            if time.monotonic() > deadline:
                raise AssertionError(f"did not see {text!r}; output after the last match:\n{self.seen[self.mark:]}")
            try:
                chunk = self.child.read_nonblocking(4096, timeout=0.1)
            except pexpect.TIMEOUT:
                continue
            self.seen += _ESCAPES.sub("", chunk)

    def type(self, text: str) -> None:
        self.child.send(text)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    env = {**os.environ, "REQON_HISTORY_FILE": str(tmp_path / "history"), "PROMPT_TOOLKIT_NO_CPR": "1",
           "TERM": "xterm-256color", "PAGER": "less", "NO_COLOR": ""}
    env.pop("CI", None)
    child = pexpect.spawn(sys.executable, ["-m", "reqon.cli", "repl", "--data-dir", str(tmp_path / "data")],
                          env=env, cwd=str(tmp_path), dimensions=(40, 120), encoding="utf-8", codec_errors="replace")
    term = Terminal(child)
    try:
        yield term
    finally:
        child.close(force=True)


def test_a_session_in_a_terminal(terminal: Terminal, demo_server: object) -> None:
    url = demo_server.url  # type: ignore[attr-defined]
    t = terminal
    t.expect("reqon> ")

    t.type("1 + 2\r")
    t.expect("1 + 2\n3\nreqon> ")

    mission = ["mission Shop {", f'source Api {{ auth: none, base: "{url}" }}', 'store books: memory("books")',
               "action Fetch {", 'get "/books" { params: { per_page: 5 } }',
               "store response.items -> books { key: .isbn }", "}", "run Fetch", "}"]
    for line in mission:
        t.type(line + "\r")
        time.sleep(0.05)
    t.expect("reqon> ")  # the mission is one input: the prompt comes back once, after its last line

    t.type(":run\r")
    t.expect("mission Shop succeeded")
    t.expect("records written: books 5")

    for keys in (":sh", "\t", " bo", "\t"):  # Tab completes the command, then the store name
        t.type(keys)
        time.sleep(0.2)
    t.expect(":show books")
    t.type("\r")
    t.expect("books (5 records)")
    t.expect("┃ isbn")
    t.expect("reqon> ")

    t.type("\x1b[A")  # Up: the last input comes back
    t.expect(":show books")
    t.type("\r")
    t.expect("books (5 records)")

    t.type("length(1 2)\r")
    t.expect("error[E101]: unexpected '2'")
    t.expect("1 | length(1 2)")
    t.expect("|          ^")

    t.type('get "/slow?ms=5000"\r')  # Ctrl-C cancels a running step and the prompt comes back
    t.expect('get "/slow?ms=5000"\n')
    time.sleep(0.3)
    t.type("\x03")
    t.expect("cancelled\nreqon> ", timeout=4)

    t.type("count(books)\r")
    t.expect("count(books)\n5\nreqon> ")

    t.type("\x04")
    t.child.expect(pexpect.EOF, timeout=10)
    t.child.close()
    assert t.child.exitstatus == 0


def test_piped_standard_input_prints_one_line_per_result(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "reqon.cli", "repl", "--data-dir", str(tmp_path)],
                            input="1 + 2\n", capture_output=True, text=True, timeout=30, cwd=tmp_path, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, "3\n", "")


def test_piped_errors_go_to_stderr_and_the_exit_status_stays_0(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "reqon.cli", "repl", "--data-dir", str(tmp_path)],
                            input="let x = [1,\n 2]\n1 +)\n:show nope\nlength(x)\n", capture_output=True, text=True,
                            timeout=30, cwd=tmp_path, check=False)
    assert result.returncode == 0
    assert result.stdout == "2\n"
    assert "<input 2>:1:4: error[E101]: unexpected ')'" in result.stderr
    assert "unknown store nope" in result.stderr
