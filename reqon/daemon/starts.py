"""The daemon's memory of when each mission last started (LANGUAGE.md §8.2).

`<data-dir>/daemon/last-starts.json` maps mission names to ISO-8601 UTC instants and is
replaced atomically at every start, so a restarted daemon keeps each interval instead of
running everything at once, and a file torn by a crash cannot exist. A damaged file is
read as empty: the cost is one early run per mission, never a refusal to start.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from reqon.errors import RunError
from reqon.stores.file import write_atomically


class LastStarts:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "daemon" / "last-starts.json"
        self._starts: dict[str, dt.datetime] = self._read()

    def _read(self) -> dict[str, dt.datetime]:
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        starts = {}
        for mission, text in (raw.items() if isinstance(raw, dict) else ()):
            try:
                when = dt.datetime.fromisoformat(str(text))
            except ValueError:
                continue
            if when.tzinfo is not None:
                starts[str(mission)] = when
        return starts

    def get(self, mission: str) -> dt.datetime | None:
        return self._starts.get(mission)

    def record(self, mission: str, when: dt.datetime) -> None:
        """Remember a start; RunError when the file cannot be written (the start is kept in memory)."""
        self._starts[mission] = when
        text = json.dumps({m: t.isoformat() for m, t in sorted(self._starts.items())}, indent=2) + "\n"
        try:
            write_atomically(self.path, text)
        except OSError as exc:
            raise RunError(kind="store", message=f"cannot write {self.path}: {exc.strerror or exc}") from None
