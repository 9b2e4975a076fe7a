"""Run state and run history in PostgreSQL (`--database`, LANGUAGE.md §8.5).

With `--database`, the run state that `--resume` reads lives next to the `sql` stores it
describes, so that a run resumed from another machine (or container) sees the same state
as the data. Two tables, created if missing:

* `reqon_runs (mission TEXT PRIMARY KEY, state JSONB, updated_at TIMESTAMPTZ)`: the state
  document of the last run of each mission (the same document as the state file); each
  write is one UPSERT, so a crash leaves the previous or the new state, never half of one.
* `reqon_run_history (mission, run, entry JSONB, recorded_at)`, primary key
  `(mission, run)`: one row per finished run, what `reqon runs` lists.

Two runs of one mission must not share a state: each run holds the session advisory lock
`reqon:run:<key>` of the database while it runs, where the key is the mission's name for
lane 0 and `<mission>.<k+1>` for the daemon's overlapping runs in lane k (their rows in
`reqon_runs` have that key too; the document inside says the mission). PostgreSQL releases it when the
run's connection ends, which is also what happens when the process is killed. Runs of
different missions use different rows and locks and never wait for each other.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reqon.engine.lanes import lane_of
from reqon.errors import ConfigError, RunError

if TYPE_CHECKING:
    from reqon.stores.postgres import PostgresDatabase

RUNS_TABLE = "reqon_runs"
HISTORY_TABLE = "reqon_run_history"


class PostgresRunStates:
    """The run states and run history of every mission, in one PostgreSQL database."""

    def __init__(self, database: PostgresDatabase) -> None:
        self.database = database
        self.where = database.address.describe()
        try:
            with database.creating("cannot prepare the run-state tables") as connection:
                connection.execute(f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (mission TEXT PRIMARY KEY, "
                                   "state JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                connection.execute(f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (mission TEXT NOT NULL, "
                                   "run TEXT NOT NULL, entry JSONB NOT NULL, "
                                   "recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (mission, run))")
        except RunError as exc:
            raise ConfigError(exc.message) from None

    def lock(self, mission: str) -> None:
        """Hold `reqon:run:<mission>` for the rest of the run, or refuse (exit 3) while another run holds it."""
        name = f"reqon:run:{mission}"
        try:
            taken = self.database.try_lock(name)
        except RunError as exc:
            raise ConfigError(exc.message) from None
        if not taken:
            raise ConfigError(f"mission {mission} is already running against {self.where} (another process "
                              f"holds the advisory lock {name}); wait for it to end, or stop it")

    def hold(self, key: str) -> bool:
        """Take `reqon:run:<key>` for a moment (recovering a lane a killed run left), never waiting."""
        try:
            return self.database.try_lock(f"reqon:run:{key}")
        except RunError:
            return False

    def let_go(self, key: str) -> None:
        self.database.unlock(f"reqon:run:{key}")

    def extra_lanes(self, mission: str) -> list[str]:
        """The rows of `mission`'s lanes after the first (`M.2`, `M.3`, …)."""
        with self.database.session("cannot read the run states") as connection:
            rows = connection.execute(f"SELECT mission FROM {RUNS_TABLE} WHERE mission LIKE %s",
                                      (mission.replace("_", "\\_") + ".%",)).fetchall()
        keys = [str(row[0]) for row in rows]
        return sorted((k for k in keys if lane_of(k)[0] == mission and lane_of(k)[1] > 0), key=lambda k: lane_of(k)[1])

    def remove(self, key: str) -> None:
        with self.database.session(f"cannot remove the run state {key}") as connection:
            connection.execute(f"DELETE FROM {RUNS_TABLE} WHERE mission = %s", (key,))

    def read(self, mission: str) -> dict[str, Any] | None:
        """The recorded state of `mission`, or None; a state of another format raises ValueError."""
        try:
            with self.database.session("cannot read the run state") as connection:
                row = connection.execute(f"SELECT state FROM {RUNS_TABLE} WHERE mission = %s", (mission,)).fetchone()
        except RunError as exc:
            raise ValueError(exc.message) from None
        if row is None:
            return None
        if not isinstance(row[0], dict):
            raise ValueError(f"{self.where}: the run state of {mission} in {RUNS_TABLE} is not a JSON object")
        return row[0]

    def write(self, mission: str, document: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self.database.session(f"cannot write the run state of {mission}") as connection:
            connection.execute(f"INSERT INTO {RUNS_TABLE} (mission, state) VALUES (%s, %s) ON CONFLICT (mission) "
                               "DO UPDATE SET state = EXCLUDED.state, updated_at = now()", (mission, Jsonb(document)))

    def append_history(self, mission: str, entry: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self.database.session(f"cannot record the run of {mission}") as connection:
            connection.execute(f"INSERT INTO {HISTORY_TABLE} (mission, run, entry) VALUES (%s, %s, %s) "
                               "ON CONFLICT (mission, run) DO UPDATE SET entry = EXCLUDED.entry",
                               (mission, str(entry.get("run")), Jsonb(entry)))

    def history(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every recorded run, oldest first, and the states of the last run of every mission."""
        with self.database.session("cannot read the recorded runs") as connection:
            entries = [row[0] for row in connection.execute(
                f"SELECT entry FROM {HISTORY_TABLE} ORDER BY recorded_at, mission, run").fetchall()]
            states = [row[0] for row in connection.execute(
                f"SELECT state FROM {RUNS_TABLE} ORDER BY mission").fetchall()]
        return entries, states
