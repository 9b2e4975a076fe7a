"""`file` and `nosql` stores: a JSON file loaded at open, kept in memory, replaced atomically.

The file is only ever replaced whole (temporary file in the same directory, fsync, rename,
fsync of the directory), so a crash at any moment leaves either the previous or the new
contents, never a damaged file (§6.6.6). Writes between two flushes live only in memory
(the run journal keeps them across a crash, reqon/engine/runstate.py).

Several processes may share a file store (runs of different missions on one data
directory). Each flush holds an OS lock on `.<name>.lock` beside the file; when the file
changed since this process last read or wrote it, the flush reads it again and re-applies
this process's steps since its last flush on top, so neither process loses the other's
records (a step of each wins for the keys both wrote, in flush order).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from reqon.stores.base import (
    Items,
    JsonObject,
    SharedResources,
    Snapshot,
    json_text,
    Records,
    prepare_records,
    store_error,
    to_json_value,
)
from reqon.stores.locks import FileLock
from reqon.stores.memory import RecordTable

Step = tuple[Records, bool, bool | None]  # records, upsert, partial

_RECORD_SEPARATORS = (", ", ": ")


def store_path(kind: str, target: str, data_dir: Path) -> Path:
    """Where a `file` or `nosql` store keeps its records (§3.2)."""
    base = data_dir / "nosql" if kind == "nosql" else data_dir
    return base / f"{target}.json"


class JsonFile:
    """The records of one JSON file, shared by every store declaration that names it.

    Flushing renders a snapshot on the event loop (consistent by construction) and writes it
    in a worker thread, so an fsync never stalls other branches. Each snapshot carries the
    table's generation; the thread writes only snapshots newer than the file, so concurrent
    flushes coalesce and an older snapshot never replaces a newer one, even when the task
    that started a flush was cancelled while its thread kept going.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.table = RecordTable(load_records(path))
        self._write_lock = threading.Lock()
        self._written_generation = self.table.generation
        self._signature = _signature(path)
        self._steps: list[Step] = []  # applied since the last flush, for a flush that must merge
        self._lock_path = path.with_name(f".{path.name}.lock")

    def apply(self, records: Records, *, upsert: bool, partial: bool | None) -> None:
        self.table.apply(records, upsert=upsert, partial=partial)
        self._steps.append((records, upsert, partial))

    async def flush(self) -> None:
        if self.table.generation <= self._written_generation:
            return
        # One lock object per flush: flocks of two descriptors exclude each other, so this
        # also orders concurrent flushes of this process (other tasks, other threads' loops).
        lock = FileLock(self._lock_path)
        await lock.acquire_async()
        try:
            if self.table.generation <= self._written_generation:
                return
            if _signature(self.path) != self._signature:
                self._merge_with_disk()
            taken = len(self._steps)
            generation, items = self.table.versioned_items()
            write = asyncio.ensure_future(asyncio.to_thread(self._write, generation, items))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                await asyncio.wait([write])  # keep the lock until the file is replaced
                raise
            del self._steps[:taken]
        finally:
            lock.release()

    def _merge_with_disk(self) -> None:
        """Another process replaced the file: start from its contents, re-apply our steps."""
        self.table.rebase(load_records(self.path), list(self._steps))

    def _write(self, generation: int, items: list[tuple[str, JsonObject]]) -> None:
        with self._write_lock:
            if generation <= self._written_generation:
                return
            try:
                write_atomically(self.path, render(items))
            except OSError as exc:
                raise store_error(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            self._written_generation = generation
            self._signature = _signature(self.path)


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes whenever the file is replaced (a rename gives a new inode)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def render(items: list[tuple[str, JsonObject]]) -> str:
    """One JSON object, keys in ascending order, one record per line.

    One line per record keeps diffs of the file readable and lets the C JSON encoder do the
    work (an indented dump of a large store goes through the much slower Python encoder).
    """
    if not items:
        return "{}\n"
    lines = [
        f"  {json_text(key)}: {json_text(record, separators=_RECORD_SEPARATORS)}"
        for key, record in items
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers and crashes see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    data = text.encode("utf-8")
    try:
        # os.open with mode 0o666 honours the umask, unlike tempfile (always 0o600).
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")


def remove_stale_temporaries(data_dir: Path) -> list[Path]:
    """Remove the temporary files of `write_atomically` left by a process that died mid-write.

    The writer's pid is in the name; a file of a process still alive is left alone, since
    a run of another mission may be writing it right now. Returns what was removed.
    """
    removed: list[Path] = []
    if not data_dir.is_dir():
        return removed
    for path in sorted(data_dir.rglob(".*.tmp")):
        match = _TEMPORARY.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        pid = int(match["pid"])
        if pid != os.getpid() and _alive(pid):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; directories cannot be opened for fsync on Windows."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_records(path: Path) -> dict[str, JsonObject]:
    """Read a store file; a missing file is an empty store, a damaged one is an error.

    A damaged file is never treated as empty: the next flush would overwrite what may be
    recoverable by hand.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise store_error(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise store_error(
            f"{path} is not valid JSON ({exc}); the store was not opened, "
            "so that nothing overwrites the file: repair or remove it"
        ) from exc
    if not isinstance(data, dict):
        raise store_error(f"{path} must hold one JSON object mapping keys to records")
    for key, record in data.items():
        if not isinstance(record, dict):
            raise store_error(f"{path}: the record for key {key!r} is not a JSON object")
    return {key: to_json_value(record) for key, record in data.items()}


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


_files: SharedResources[JsonFile] = SharedResources()


class JsonFileStore:
    """A `file` or `nosql` store declaration: a named view of a shared `JsonFile`."""

    def __init__(self, name: str, kind: str, target: str, path: Path) -> None:
        self.name = name
        self.kind = kind
        self.target = target
        self.path = path
        self._registry_key = str(path.resolve())
        self._file: JsonFile | None = _files.acquire(self._registry_key, lambda: JsonFile(path))

    async def write(
        self, records: Iterable[tuple[str, Any]], *, upsert: bool, partial: bool | None
    ) -> None:
        prepared = prepare_records(self.name, records)
        self._open().apply(prepared, upsert=upsert, partial=partial)

    def get(self, key: str) -> JsonObject | None:
        return self._open().table.get(key)

    def list(self) -> Snapshot:
        return self._open().table.snapshot()

    def count(self) -> int:
        return len(self._open().table)

    def items(self) -> Items:
        return self._open().table.versioned_items()[1]

    async def flush(self) -> None:
        await self._open().flush()

    async def close(self) -> None:
        """Flush, then let go of the file; closing twice is harmless."""
        if self._file is None:
            return
        try:
            await self._file.flush()
        finally:
            self._file = None
            _files.release(self._registry_key)

    def _open(self) -> JsonFile:
        if self._file is None:
            raise store_error(f"store {self.name} is closed")
        return self._file
