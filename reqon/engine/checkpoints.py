"""Incremental-sync checkpoints (LANGUAGE.md §6.5): a JSON file per mission, or PostgreSQL rows.

Invocations stage checkpoints; `commit` writes them only when the invocation
that fetched completed, so a failed or cancelled run fetches the same window
again next time instead of skipping it. With `--database` they live in the table
`reqon_checkpoints` of that database (one row per mission and key), next to the `sql`
stores the fetches fill, so that the data and the window it covers move together.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reqon.errors import ConfigError, RunError
from reqon.stores.file import write_atomically

if TYPE_CHECKING:
    from reqon.stores.postgres import PostgresDatabase


class Checkpoints(Protocol):
    """What the fetch planner needs: read a key's checkpoint, commit the staged ones."""

    def synced_at(self, key: str) -> str | None: ...

    def entries(self) -> dict[str, dict[str, Any]]: ...

    def commit(self, staged: dict[str, dict[str, Any]]) -> None: ...


def _synced_at(entries: dict[str, Any], key: str) -> str | None:
    entry = entries.get(key)
    value = entry.get("syncedAt") if isinstance(entry, dict) else None
    return value if isinstance(value, str) else None


class _Loaded:
    """The reading half both kinds share: the checkpoints loaded at the start of the run."""

    _entries: dict[str, Any]

    def entries(self) -> dict[str, dict[str, Any]]:
        """A copy of every checkpoint, for remote workers (they stage, the driver commits)."""
        return {key: dict(entry) for key, entry in self._entries.items()}

    def synced_at(self, key: str) -> str | None:
        return _synced_at(self._entries, key)


class CheckpointFile(_Loaded):
    def __init__(self, data_dir: Path, mission: str) -> None:
        self.path = data_dir / "sync" / f"{mission}.json"
        self._entries: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read sync checkpoints {self.path}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"sync checkpoints {self.path} are damaged: expected a JSON object")
        return data

    def commit(self, staged: dict[str, dict[str, Any]]) -> None:
        if not staged:
            return
        self._entries.update(staged)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(self._entries, indent=2, sort_keys=True) + "\n")
        staged.clear()


CHECKPOINT_TABLE = "reqon_checkpoints"


class PostgresCheckpoints(_Loaded):
    """The checkpoints of one mission as rows (mission, key, checkpoint JSONB) of `reqon_checkpoints`.

    Missions never see each other's rows; a commit is one transaction, so a crash keeps
    either all of an invocation's checkpoints or none.
    """

    def __init__(self, database: PostgresDatabase, mission: str) -> None:
        self.database = database
        self.mission = mission
        try:
            with database.creating("cannot read the sync checkpoints") as connection:
                connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {CHECKPOINT_TABLE} (mission TEXT NOT NULL, key TEXT NOT NULL, "
                    "checkpoint JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
                    "PRIMARY KEY (mission, key))")
                rows = connection.execute(f"SELECT key, checkpoint FROM {CHECKPOINT_TABLE} WHERE mission = %s",
                                          (mission,)).fetchall()
        except RunError as exc:
            raise ConfigError(exc.message) from None
        self._entries: dict[str, Any] = {key: value for key, value in rows}

    def commit(self, staged: dict[str, dict[str, Any]]) -> None:
        if not staged:
            return
        from psycopg.types.json import Jsonb

        rows = [(self.mission, key, Jsonb(entry)) for key, entry in sorted(staged.items())]
        with self.database.session("cannot write the sync checkpoints") as connection, connection.transaction():
            connection.cursor().executemany(
                f"INSERT INTO {CHECKPOINT_TABLE} (mission, key, checkpoint) VALUES (%s, %s, %s) "
                "ON CONFLICT (mission, key) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, updated_at = now()",
                rows)
        self._entries.update(staged)
        staged.clear()
