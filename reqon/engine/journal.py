"""Where the run state of a mission is kept: a snapshot plus a journal, behind one narrow interface.

`runstate.RunState` decides *what* to record; a `RunStateBackend` decides *where*. The
run state is two things:

* the **snapshot**: one JSON object (stages, branches, loop records, errors) replaced
  whole now and then, when a branch or a stage settles and at the end;
* the **journal**: between two snapshots, one entry per completed loop iteration, holding
  the iteration's identity *and the store writes it made*, appended the moment the
  iteration completes. An entry that has been appended survives a crash of the process
  (the operating system keeps what was written to a file); `sync` makes the entries
  survive a power loss too, and is called at most about once a second.

The snapshot names the journal it continues (`{"id", "position"}`): on the next start,
the entries after that position are replayed (their writes applied to the stores again,
their iterations marked done); a journal with another id is void, because a later
snapshot already holds everything in it.

The interface a backend implements (the file backend below; a PostgreSQL one would keep
the snapshot in a row and the journal in a table, with `position` a sequence number):

    read_snapshot() -> dict | None        the last snapshot; ValueError when damaged
    write_snapshot(document) -> None      replace it atomically; durable when it returns
    start_journal(journal_id) -> None     begin an empty journal; older entries become void
    append(entry) -> None                 add one entry; survives a process crash on return
    position() -> int                     where the next entry goes (saved in the snapshot)
    sync() -> None                        make every appended entry survive a power loss (may run
                                          in a worker thread, concurrently with `append`)
    entries(journal_id, position) -> list the entries appended after `position` of that
                                          journal (a torn last entry is dropped)
    close() -> None                       sync and let go

Entries and snapshots are plain JSON objects; a backend never interprets them.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from reqon.stores.file import write_atomically

JsonObject = dict[str, Any]


class RunStateBackend(Protocol):
    """See the module docstring: the whole contract between the run state and its storage."""

    def read_snapshot(self) -> JsonObject | None: ...

    def write_snapshot(self, document: JsonObject) -> None: ...

    def start_journal(self, journal_id: str) -> None: ...

    def append(self, entry: JsonObject) -> None: ...

    def position(self) -> int: ...

    def sync(self) -> None: ...

    def entries(self, journal_id: str, position: int) -> list[JsonObject]: ...

    def close(self) -> None: ...


class FileBackend:
    """`<data-dir>/runs/<Mission>.json` (snapshot) and `<Mission>.journal` (JSON lines).

    The journal's first line is `{"journal": id}`; each entry is one line written with a
    single `write` on a file opened with O_APPEND, so a crash tears at most the last line,
    which has no newline and is dropped on reading. `position` is a byte offset counted
    from the end of the first line, so a new journal starts at 0.
    """

    def __init__(self, snapshot: Path, journal: Path) -> None:
        self.snapshot_path = snapshot
        self.journal_path = journal
        self._fd: int | None = None
        self._position = 0
        self._fd_lock = threading.Lock()  # `sync` may run in a worker thread while `close` runs

    def read_snapshot(self) -> JsonObject | None:
        try:
            raw = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValueError(f"cannot read {self.snapshot_path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{self.snapshot_path} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{self.snapshot_path} is not a run state of this version of reqon")
        return data

    def write_snapshot(self, document: JsonObject) -> None:
        write_atomically(self.snapshot_path, json.dumps(document, separators=(",", ":")) + "\n")

    def start_journal(self, journal_id: str) -> None:
        """A new journal replaces the old one by rename, so a crash leaves one or the other."""
        self.close()
        write_atomically(self.journal_path, json.dumps({"journal": journal_id}) + "\n")
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND)
        self._position = 0

    def append(self, entry: JsonObject) -> None:
        if self._fd is None:
            raise OSError(f"the journal {self.journal_path} is not open")
        data = (json.dumps(entry, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")
        written = os.write(self._fd, data)
        while written < len(data):  # a regular file takes it in one go; a full disk raises
            written += os.write(self._fd, data[written:])
        self._position += len(data)

    def position(self) -> int:
        return self._position

    def sync(self) -> None:
        with self._fd_lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def entries(self, journal_id: str, position: int) -> list[JsonObject]:
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return []
        header, _, rest = raw.partition(b"\n")
        try:
            if json.loads(header).get("journal") != journal_id:
                return []
        except (ValueError, AttributeError):
            return []
        found = []
        for line in rest[max(0, position):].split(b"\n")[:-1]:  # the piece after the last newline is torn
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                found.append(entry)
        return found

    def close(self) -> None:
        with self._fd_lock:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = None
