"""Keyed stores (§3.2, §6.6): open one per store declaration, then use the `Store` protocol.

`open_store` is synchronous: it runs once per declaration while the mission is prepared
(§6.1), before anything runs concurrently, and loading a file or creating a table there
keeps the failure a configuration error (exit 3) rather than a failure of the first step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from reqon.stores.base import Store, store_error
from reqon.stores.file import JsonFileStore, store_path
from reqon.stores.memory import MemoryStore
from reqon.stores.sqlite import SqliteStore

if TYPE_CHECKING:
    from reqon.stores.postgres import PostgresDatabase
    from reqon.stores.postgrest import PostgrestEndpoint

__all__ = ["STORE_KINDS", "Store", "open_store", "validate_target"]

STORE_KINDS = ("memory", "file", "sql", "nosql", "postgrest")

_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def validate_target(kind: str, target: str) -> str | None:
    """The `E310` message for a bad target of a store of `kind`, or None when it is fine.

    Unknown kinds return None: they are `E305`, reported on their own.
    """
    if kind in ("file", "nosql"):
        segments = target.split("/")
        if all(_PATH_SEGMENT.fullmatch(s) and s != ".." for s in segments):
            return None
        return (
            f'{kind} store target "{target}" must be a relative path: segments of letters, '
            'digits, ".", "_" and "-" separated by "/", no "..", not absolute, not empty'
        )
    if kind in ("sql", "postgrest"):
        if _TABLE_NAME.fullmatch(target):
            return None
        return (
            f'{kind} store target "{target}" must be a table name: a letter or "_", '
            'then letters, digits, "_" or "."'
        )
    return None


def open_store(kind: str, name: str, target: str, data_dir: Path, *,
               database: PostgresDatabase | None = None, postgrest: PostgrestEndpoint | None = None) -> Store:
    """Open the store declared as `store name: kind("target")`.

    `sql` stores live in `database` when one is given (`--database`), else in the SQLite
    database of `data_dir`; `postgrest` stores need the `postgrest` endpoint.
    Raises `RunError` of kind `store` for an unknown kind, a bad target, a damaged file, a
    database or table that cannot be opened, and a `postgrest` store without an endpoint.
    """
    problem = validate_target(kind, target)
    if problem is not None:
        raise store_error(f"store {name}: {problem}")
    if kind == "memory":
        return MemoryStore(name, target)
    if kind in ("file", "nosql"):
        return JsonFileStore(name, kind, target, store_path(kind, target, data_dir))
    if kind == "sql" and database is not None:
        from reqon.stores.postgres import PostgresStore

        return PostgresStore(name, target, database)
    if kind == "sql":
        return SqliteStore(name, target, data_dir)
    if kind == "postgrest":
        if postgrest is None:
            raise store_error(f"store {name}: postgrest stores need REQON_POSTGREST_URL and REQON_POSTGREST_KEY")
        from reqon.stores.postgrest import PostgrestStore

        return PostgrestStore(name, target, postgrest)
    expected = ", ".join(STORE_KINDS)
    raise store_error(f"store {name}: unknown store kind {kind!r} (expected one of {expected})")
