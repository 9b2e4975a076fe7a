"""Incremental-sync checkpoints (LANGUAGE.md §6.5), one JSON file per mission.

Invocations stage checkpoints; `commit` writes them only when the invocation
that fetched completed, so a failed or cancelled run fetches the same window
again next time instead of skipping it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reqon.errors import ConfigError
from reqon.stores.file import write_atomically


class CheckpointFile:
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

    def entries(self) -> dict[str, dict[str, Any]]:
        """A copy of every checkpoint, for remote workers (they stage, the driver commits)."""
        return {key: dict(entry) for key, entry in self._entries.items()}

    def synced_at(self, key: str) -> str | None:
        entry = self._entries.get(key)
        value = entry.get("syncedAt") if isinstance(entry, dict) else None
        return value if isinstance(value, str) else None

    def commit(self, staged: dict[str, dict[str, Any]]) -> None:
        if not staged:
            return
        self._entries.update(staged)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(self._entries, indent=2, sort_keys=True) + "\n")
        staged.clear()
