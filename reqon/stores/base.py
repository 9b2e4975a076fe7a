"""What every store kind shares: the `Store` protocol, record rules and the step semantics.

A store step (§6.6.4) is the unit of atomicity. The local kinds (memory, file, SQLite)
apply a step with no `await` between its first and its last record, so on the asyncio event
loop a step can neither be observed half-done by another task nor be cut in half by
cancellation (§7.7: "a store step already applying completes"); they add a
`threading.Lock` so that the guarantee also holds if two event loops in different threads
(the daemon) share a backing file or database. The server kinds (PostgreSQL, PostgREST)
make a step one transaction on the server, which readers see whole or not at all.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from reqon.errors import RunError

JsonObject = dict[str, Any]
Records = list[tuple[str, JsonObject]]
Snapshot = list[JsonObject]
Items = list[tuple[str, JsonObject]]  # (key, record) pairs in key order

PARTIAL_FIELD = "_partial"
_EXACT_INT_LIMIT = 2**53


class Store(Protocol):
    """A named, keyed collection of JSON objects, as the evaluator sees it.

    Records handed out by `get` and `list` may be shared with the store: they must be
    treated as immutable, like every value of the language (§5.1). Reads are synchronous,
    which lets the expression evaluator stay synchronous (and fast): the local kinds answer
    from memory or a local database, the server kinds with one blocking query or request.
    """

    name: str
    kind: str
    target: str

    async def write(self, records: Records, *, upsert: bool, partial: bool | None) -> None:
        """Apply one store step: all of `records`, in order, or none of them."""
        ...

    def get(self, key: str) -> JsonObject | None:
        """The record stored under `key`, without listing the store."""
        ...

    def list(self) -> Snapshot:
        """A snapshot of every record in ascending code-point order of the keys."""
        ...

    def count(self) -> int:
        """How many records the store holds, in constant time."""
        ...

    def items(self) -> Items:
        """(key, record) pairs in key order: what a remote executor ships as a snapshot."""
        ...

    async def flush(self) -> None:
        """Make every completed step durable; a no-op when nothing was written since."""
        ...

    async def close(self) -> None:
        """Flush and release the backing file or database."""
        ...


def store_error(message: str) -> RunError:
    """Build the run-time failure of kind `store` (invalid records or keys, I/O failures)."""
    return RunError(kind="store", message=message)


def to_json_value(value: Any) -> Any:
    """Copy `value` as a plain JSON value, writing integral doubles as integers (§5.1).

    Doing this when a record enters a store (rather than only when a file is written) makes
    every kind hand back the same value, and gives the store its own copy, so nothing the
    caller still holds is shared with it. Exact-type checks come first and leaves are
    copied inline: this runs for every field of every record stored (bench/stores.py).
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return _copy_object(value)
    if kind is list or kind is tuple:
        return [item if type(item) in _LEAVES else to_json_value(item) for item in value]
    if kind is float:
        return _json_number(value)
    return _to_json_value_subclass(value)


_LEAVES = frozenset({str, int, bool, type(None)})


def _copy_object(value: dict[Any, Any]) -> JsonObject:
    copy: JsonObject = {}
    for key, item in value.items():
        if type(key) is not str:
            key = _json_key(key)
        copy[key] = item if type(item) in _LEAVES else to_json_value(item)
    return copy


def _to_json_value_subclass(value: Any) -> Any:
    """Subclasses of the JSON types (a `bool` is an `int`, an IntEnum too) and everything else."""
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _json_number(value)
    if isinstance(value, dict):
        return _copy_object(dict(value))
    if isinstance(value, (list, tuple)):
        return [to_json_value(item) for item in value]
    raise ValueError(f"a Python {type(value).__name__} is not a JSON value")


def _json_number(value: float) -> int | float:
    if not math.isfinite(value):
        raise ValueError(f"{value} is not a JSON number")
    if value.is_integer() and -_EXACT_INT_LIMIT <= value <= _EXACT_INT_LIMIT:
        return int(value)
    return value


def _json_key(key: Any) -> str:
    if not isinstance(key, str):
        raise ValueError(f"object key {key!r} is not a string")
    return key


def prepare_records(store_name: str, records: Iterable[tuple[str, Any]]) -> Records:
    """Validate and copy a step's records before any of them is applied (all or nothing)."""
    prepared: Records = []
    for key, value in records:
        if not isinstance(key, str):
            raise store_error(f"store {store_name}: key {key!r} is not a string")
        if not isinstance(value, dict):
            raise store_error(
                f"store {store_name}: the record for key {key!r} is a "
                f"{_describe(value)}, not an object"
            )
        try:
            prepared.append((key, to_json_value(value)))
        except (ValueError, RecursionError) as exc:
            raise store_error(f"store {store_name}: the record for key {key!r}: {exc}") from exc
    return prepared


def chunks(records: Iterable[tuple[str, Any]], size: int) -> Iterator[list[tuple[str, Any]]]:
    """A step's records in lists of `size`, so that database kinds stream a large step."""
    chunk: list[tuple[str, Any]] = []
    for item in records:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "list"
    return f"Python {type(value).__name__}"


def merge_record(
    existing: JsonObject | None, value: JsonObject, *, upsert: bool, partial: bool | None
) -> JsonObject:
    """The record a write leaves behind (§6.6.2, §6.6.3).

    Upsert merges top-level fields only: written fields overwrite (a nested object is
    replaced whole, `null` is stored as `null`), fields the write does not mention stay. The
    `_partial` marker is set after the merge. A new dict is returned, the inputs untouched.
    """
    record = {**existing, **value} if upsert and existing is not None else dict(value)
    if partial is not None:
        record[PARTIAL_FIELD] = partial
    return record


def json_text(value: Any, *, separators: tuple[str, str] | None = None) -> str:
    """Serialise a JSON value as text that always encodes to UTF-8.

    Non-ASCII text is kept readable; a string holding a lone surrogate (which JSON escapes
    such as "\\ud800" can produce) cannot be encoded as UTF-8, so such a value falls back to
    ASCII escapes, which round-trip exactly.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=separators)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=separators)
    return text


Resource = TypeVar("Resource")


class SharedResources(Generic[Resource]):
    """Reference-counted resources keyed by absolute path.

    Declarations of the same persistent kind and target share their data (§3.2, W513), and
    all `sql` stores share one database file; sharing one in-memory object per path is what
    keeps two handles from overwriting each other's writes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Resource, int]] = {}

    def acquire(self, key: str, factory: Callable[[], Resource]) -> Resource:
        with self._lock:
            resource, users = self._entries.get(key) or (factory(), 0)
            self._entries[key] = (resource, users + 1)
            return resource

    def release(self, key: str) -> bool:
        """Drop one user; True when it was the last one and the resource should be closed."""
        with self._lock:
            resource, users = self._entries[key]
            if users > 1:
                self._entries[key] = (resource, users - 1)
                return False
            del self._entries[key]
            return True


class TableReader(Protocol):
    """What a database behind `sql` stores answers for one of its tables."""

    def get(self, table: str, key: str) -> JsonObject | None: ...
    def list(self, table: str) -> Snapshot: ...
    def count(self, table: str) -> int: ...
    def items(self, table: str) -> Items: ...


class TableStore:
    """The reading half that every `sql` store kind shares: one table (`target`) of a database
    that `_open()` returns until the store closes. Subclasses write and close their own way."""

    target: str

    def get(self, key: str) -> JsonObject | None:
        return self._open().get(self.target, key)

    def list(self) -> Snapshot:
        return self._open().list(self.target)

    def count(self) -> int:
        return self._open().count(self.target)

    def items(self) -> Items:
        return self._open().items(self.target)

    def _open(self) -> TableReader:
        raise NotImplementedError
