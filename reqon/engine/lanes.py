"""Run lanes: how overlapping runs of one mission keep apart (LANGUAGE.md §8.2, §8.5).

A run of mission M holds one lane for its whole life, from before its stores open until
after they close. Each lane has its own run state, journal and lock, so two runs of M at
once (the daemon's `skipIfRunning: false, maxConcurrency: N`) never replace each other's
snapshot or journal:

* lane 1 (index 0) is the mission's name: `<M>.json`, `<M>.journal`, `<M>.lock`, the
  PostgreSQL row and advisory lock `reqon:run:M`; it is what `reqon run` and `--resume` use;
* lane n ≥ 2 (index n-1) is `M.n`: `<M.n>.json`, `.journal`, `.lock`, row `M.n`. Mission
  names are identifiers, so the dot never collides with another mission.

Indexes are 0-based in code; documents, logs and `reqon runs` say lane 1, 2, ….
The history stays one per mission (`<M>.history.jsonl`): every run of M, whatever its lane.
"""
from __future__ import annotations

from pathlib import Path

from reqon.errors import ConfigError
from reqon.stores.locks import LockHeld, ProcessLock


class LanesBusy(Exception):
    """Every lane a run may take is held; the message names the holders."""


def lane_key(mission: str, lane: int) -> str:
    """The key of lane index `lane` of `mission`: its state file, journal, lock and row."""
    return mission if lane == 0 else f"{mission}.{lane + 1}"


def lane_of(key: str) -> tuple[str, int]:
    """The mission and the lane index of a state key (the inverse of `lane_key`)."""
    mission, dot, number = key.rpartition(".")
    if dot and number.isdigit() and int(number) >= 2 and "." not in mission:
        return mission, int(number) - 1
    return key, 0


def mission_lock_path(data_dir: Path, key: str) -> Path:
    """Held (flock) by the run in lane `key` on this data directory (lane 1: `reqon run`'s lock)."""
    return data_dir / "runs" / f"{key}.lock"


def take_lane(data_dir: Path, mission: str, lanes: int, what: str = "reqon daemon") -> tuple[int, ProcessLock]:
    """The lowest free lane of `mission` among the first `lanes`, held; never waits.

    Lane 1 is the lock `reqon run` takes, so a manual run and the daemon never run the
    mission in the same lane. `what` is written into the lock file for the message of a
    run refused meanwhile. Raises LanesBusy naming who holds each lane, or
    ConfigError when a lock file cannot be used.
    """
    held: list[str] = []
    for lane in range(max(1, lanes)):
        suffix = f" (lane {lane + 1})" if lanes > 1 else ""
        lock = ProcessLock(mission_lock_path(data_dir, lane_key(mission, lane)), f"{what} {mission}{suffix}")
        try:
            lock.acquire()
        except LockHeld as exc:
            who = f"{exc.holder.what} (pid {exc.holder.pid}, started {exc.holder.started})" if exc.holder \
                else "another process (pid unknown)"
            held.append(f"lane {lane + 1} by {who}" if lanes > 1 else who)
            continue
        except OSError as exc:
            raise ConfigError(f"cannot lock the data directory {data_dir}: {exc.strerror or exc}") from None
        return lane, lock
    raise LanesBusy(f"mission {mission} is already running on data directory {data_dir.resolve()}: "
                    f"held by {'; '.join(held)}")
