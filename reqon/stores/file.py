"""`file` and `nosql` stores: a JSON file loaded at open, kept in memory, replaced atomically.

The file is only ever replaced whole (temporary file in the same directory, fsync, rename,
fsync of the directory), so a crash at any moment leaves either the previous or the new
contents, never a damaged file (§6.6.6). Writes between two flushes live only in memory.
"""

from __future__ import annotations

import asyncio
import json
import os
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
    prepare_records,
    store_error,
    to_json_value,
)
from reqon.stores.memory import RecordTable

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

    async def flush(self) -> None:
        if self.table.generation <= self._written_generation:
            return
        generation, items = self.table.versioned_items()
        await asyncio.to_thread(self._write, generation, items)

    def _write(self, generation: int, items: list[tuple[str, JsonObject]]) -> None:
        with self._write_lock:
            if generation <= self._written_generation:
                return
            try:
                write_atomically(self.path, render(items))
            except OSError as exc:
                raise store_error(f"cannot write {self.path}: {exc.strerror or exc}") from exc
            self._written_generation = generation


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
        self._open().table.apply(prepared, upsert=upsert, partial=partial)

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
