"""Which database `sql` stores, checkpoints and run state use: `--database`, else REQON_DATABASE_URL.

Shared by `reqon run`, `reqon repl` and `reqon runs`, so that all three read the setting the
same way and report a missing driver the same way.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from reqon.errors import ConfigError

if TYPE_CHECKING:
    from reqon.stores.postgres import PostgresDatabase


def open_database(url: str | None) -> PostgresDatabase | None:
    """The database of `url`, else of REQON_DATABASE_URL, else None (SQLite in the data directory).

    Connects at once: a wrong password or an unreachable server is a ConfigError naming
    host, port and database.
    """
    url = url or os.environ.get("REQON_DATABASE_URL") or None
    if url is None:
        return None
    try:
        from reqon.stores.postgres import PostgresDatabase
    except ImportError:
        raise ConfigError("--database needs PostgreSQL support: pip install 'reqon[postgres]'") from None
    return PostgresDatabase.connect(url)
