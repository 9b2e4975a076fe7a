"""The in-memory record table, used as is by `memory` stores and as the cache of file stores."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from reqon.stores.base import (
    Items,
    JsonObject,
    Records,
    Snapshot,
    merge_record,
    prepare_records,
)


class RecordTable:
    """Records by key, listable in key order, with a generation number counting steps.

    Keys are never removed (the language has no delete), so key order is kept as a sorted
    list plus the keys added since it was last sorted: a listing sorts only when new keys
    arrived, and Timsort merges the sorted run with the new keys in near-linear time.
    """

    def __init__(self, records: dict[str, JsonObject] | None = None) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, JsonObject] = dict(records or {})
        self._sorted_keys: list[str] = sorted(self._records)
        self._new_keys: list[str] = []
        self.generation = 0

    def apply(self, records: Records, *, upsert: bool, partial: bool | None) -> None:
        """Apply one prepared step; it cannot fail halfway because the records are valid."""
        with self._lock:
            for key, value in records:
                existing = self._records.get(key)
                if existing is None:
                    self._new_keys.append(key)
                self._records[key] = merge_record(existing, value, upsert=upsert, partial=partial)
            self.generation += 1

    def get(self, key: str) -> JsonObject | None:
        return self._records.get(key)

    def snapshot(self) -> Snapshot:
        _, items = self.versioned_items()
        return [record for _, record in items]

    def versioned_items(self) -> tuple[int, list[tuple[str, JsonObject]]]:
        """The generation and the (key, record) pairs in ascending key order, taken together."""
        with self._lock:
            if self._new_keys:
                self._sorted_keys.extend(self._new_keys)
                self._sorted_keys.sort()
                self._new_keys.clear()
            return self.generation, [(key, self._records[key]) for key in self._sorted_keys]

    def __len__(self) -> int:
        return len(self._records)


class MemoryStore:
    """A `memory` store: empty at the start of each run, gone at the end (§6.6.6)."""

    kind = "memory"

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        self.target = target
        self._table = RecordTable()

    async def write(
        self, records: Iterable[tuple[str, Any]], *, upsert: bool, partial: bool | None
    ) -> None:
        self._table.apply(prepare_records(self.name, records), upsert=upsert, partial=partial)

    def get(self, key: str) -> JsonObject | None:
        return self._table.get(key)

    def list(self) -> Snapshot:
        return self._table.snapshot()

    def count(self) -> int:
        return len(self._table)

    def items(self) -> Items:
        return self._table.versioned_items()[1]

    async def flush(self) -> None:
        """Nothing to make durable."""

    async def close(self) -> None:
        """Nothing to release; the records stay readable until the store is dropped."""

