"""`--executor ray`: units of a run on a Ray cluster (issue 15; docs/scaling.md).

The driver keeps everything of §7 (the sliding window, the modes, timeouts, the
run state, the stores); Ray only runs units. Workers are async actors, one per CPU
of the cluster (spread over its nodes), each running many units at once. A unit
goes to the least busy worker; its result comes back to the driver, which writes
its records. Cancelling the driver task that awaits a unit cancels the remote
coroutine with `ray.cancel`, which aborts its HTTP requests, and waits until it has
stopped. A worker that dies fails the units it was running (kind `runtime`);
Ray restarts it, and the next unit sent to it first re-opens the run there.

Ray is imported only here and only for `--executor ray`: without the extra, with an
unreachable address or an unsupported Ray, `ExecutorUnavailable` says why (exit 3).
"""
from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from reqon.engine.executors.gates import GateKeeper, RemoteGate, gated
from reqon.engine.executors.worker import RunContext, RunSecrets, WorkerEngine
from reqon.engine.scheduler import Executor, Unit
from reqon.engine.units import IterationsSpec, LoopShipment, UnitResult, flatten_scope
from reqon.errors import ConfigError, RunError

SUPPORTED = ((2, 9), (3, 0))  # Ray 2.x from 2.9: async actor cancellation and streaming of refs
UNITS_PER_WORKER = 1000  # max_concurrency of one worker actor: far above any window it gets
MAX_CHUNK = 16  # iterations per unit of a parallel loop
CANCEL_GRACE_S = 10.0  # how long a cancelled remote unit may take to stop
_NEEDS_RUN = "reqon: run not open here"


class ExecutorUnavailable(Exception):
    """The Ray executor cannot start: exit 3 with this message, no traceback."""


def import_ray() -> Any:
    """Ray, or a clear reason why not (the extra missing, or a version reqon does not support)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ExecutorUnavailable("--executor ray needs Ray, which is not installed: "
                                  "pip install 'reqon[ray]'") from None
    version = _version(getattr(ray, "__version__", "0"))
    low, high = SUPPORTED
    if not low <= version < high:
        raise ExecutorUnavailable(f"Ray {ray.__version__} is not supported: reqon[ray] needs Ray "
                                  f"{low[0]}.{low[1]} or newer, before {high[0]}.0 (pip install 'reqon[ray]')")
    return ray


def _version(text: str) -> tuple[int, int]:
    parts = (text.split(".") + ["0", "0"])[:2]
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except ValueError:
        return (0, 0)


# ---------------------------------------------------------------- connecting


def connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at `address` or start a local instance; True if we started Ray here."""
    if ray.is_initialized():
        return False
    if address is None:
        # Loopback only: Ray binds a local instance to the node address it detects, the
        # machine's external interface unless told this is a single-node setup.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     namespace="reqon")
        except Exception as exc:  # Ray raises many kinds here; all mean "cannot start"
            raise ExecutorUnavailable(f"cannot start a local Ray instance: {_first_line(exc)}") from None
        return True
    host = _check_reachable(address)
    if host in ("127.0.0.1", "localhost", "::1"):
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a loopback cluster: stay on it
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR", namespace="reqon")
    except Exception as exc:
        raise ExecutorUnavailable(f"cannot connect to the Ray cluster at {address}: {_first_line(exc)}") from None
    return False


def _check_reachable(address: str) -> str | None:
    """Fail in seconds, not after Ray's own minute of retries, when nothing listens there."""
    if address == "auto":
        return None
    parts = urlsplit(address if "://" in address else f"ray-gcs://{address}")
    if parts.hostname is None or parts.port is None:
        raise ExecutorUnavailable(f"--ray-address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            pass
    except OSError as exc:
        raise ExecutorUnavailable(f"cannot reach the Ray cluster at {address}: "
                                  f"{exc.strerror or exc}") from None
    return parts.hostname


def _first_line(exc: BaseException) -> str:
    """The first line of an error; for a worker's error, the first line of its cause when that
    is one of reqon's own (their messages are redacted where they are made), not Ray's header
    (`ray::UnitWorker.open_run() (pid=…)`, in terminal colours)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, (ConfigError, RunError)):
        return cause.message.splitlines()[0]
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# ---------------------------------------------------------------- the worker actor


class UnitWorker:
    """One per worker process: opens runs (secrets sealed for it) and runs their units."""

    def __init__(self) -> None:
        from reqon.engine.executors.sealing import OpeningKey
        self._key = OpeningKey()
        self._runs: dict[str, WorkerEngine] = {}

    def hello(self) -> tuple[int, bytes]:
        return os.getpid(), self._key.public

    async def open_run(self, run_id: str, context: RunContext, sealed: bytes) -> int:
        if run_id not in self._runs:
            secrets: RunSecrets = self._key.open(sealed)
            self._runs[run_id] = await WorkerEngine.open(context, secrets)
        return os.getpid()

    async def run_unit(self, run_id: str, unit_id: str, spec: Any, snapshots: dict[str, Any], scope: Any) -> Any:
        engine = self._runs.get(run_id)
        if engine is None:
            return _NEEDS_RUN
        for name in engine.needs(spec.stores):
            engine.keep(name, spec.stores[name], await snapshots[name])
        return await engine.run(spec, scope, unit_id)  # a top-level ref argument: Ray resolved it

    def cancelled_at(self, run_id: str, unit_id: str) -> Any:
        """The step a cancelled unit was running (a stage timeout names it, §7.4)."""
        engine = self._runs.get(run_id)
        return engine.cancelled.pop(unit_id, None) if engine is not None else None

    async def close_run(self, run_id: str) -> None:
        engine = self._runs.pop(run_id, None)
        if engine is not None:
            await engine.close()


@dataclass
class _Worker:
    actor: Any
    pid: int = 0
    public: bytes = b""
    load: int = 0
    opened: set[str] = field(default_factory=set)


class _Pool:
    """The worker actors of this driver process, kept across runs (tests run many)."""

    def __init__(self, ray: Any) -> None:
        cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        # Units wait on the network: a worker reserves no CPU, so that several runs (or other
        # jobs) share a cluster; SPREAD still puts one on each node before doubling up.
        remote = ray.remote(UnitWorker).options(
            num_cpus=0, max_concurrency=UNITS_PER_WORKER, max_restarts=-1, max_task_retries=0,
            scheduling_strategy="SPREAD")
        self.job = ray.get_runtime_context().get_job_id()
        self.workers = [_Worker(remote.remote()) for _ in range(cpus)]

    def least_busy(self) -> _Worker:
        return min(self.workers, key=lambda w: w.load)


_POOLS: dict[str, _Pool] = {}


def _pool(ray: Any) -> _Pool:
    job = ray.get_runtime_context().get_job_id()
    pool = _POOLS.get(job)
    if pool is None:
        _POOLS.clear()
        pool = _POOLS[job] = _Pool(ray)
    return pool


def _gatekeeper(ray: Any, sources: list[Any], context: RunContext) -> Any:
    """The run's gatekeeper actor, if a source has `rateLimit` or `maxInFlight`."""
    limits = gated(sources)
    if not limits:
        return None
    context.gated = [name for name, _, _ in limits]
    context.gatekeeper = ray.remote(GateKeeper).options(num_cpus=0, max_concurrency=100_000).remote(limits)
    return context.gatekeeper


# ---------------------------------------------------------------- the executor


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, ray: Any, pool: _Pool, run_id: str, context: Any, secrets: RunSecrets,
                 stores: dict[str, Any], started_ray: bool) -> None:
        self.ray = ray
        self.pool = pool
        self.run_id = run_id
        self.context = context  # an object ref: shipped to each worker once
        self.secrets = secrets
        self.stores = stores
        self.started_ray = started_ray
        self._snapshots: dict[tuple[str, int], Any] = {}

    @classmethod
    async def start(cls, *, address: str | None, context: RunContext, secrets: RunSecrets,
                    stores: dict[str, Any], mission_scope: Any, http: Any) -> RayExecutor:
        ray = import_ray()
        started = await asyncio.to_thread(connect, ray, address)
        try:
            pool = _pool(ray)
            keeper = _gatekeeper(ray, secrets.sources, context)
        except Exception as exc:
            if started:
                ray.shutdown()
            raise ExecutorUnavailable(f"the Ray workers did not start: {_first_line(exc)}") from None
        for name in context.gated:  # the driver's own requests pass the same gates
            http.source(name).share_gates(RemoteGate(keeper, name))
        executor = cls(ray, pool, uuid.uuid4().hex, ray.put(context), secrets, stores, started)
        executor.mission_scope = mission_scope
        executor.keeper = keeper
        try:
            await asyncio.gather(*(executor._open(w) for w in pool.workers))
        except Exception as exc:
            await executor.close()
            raise ExecutorUnavailable(f"the Ray workers did not start: {_first_line(exc)}") from None
        return executor

    @property
    def worker_pids(self) -> list[int]:
        return [w.pid for w in self.pool.workers]

    async def _open(self, worker: _Worker) -> None:
        """Open the run on a worker, sealing the secrets for its current key."""
        from reqon.engine.executors.sealing import seal
        worker.pid, worker.public = await worker.actor.hello.remote()
        await worker.actor.open_run.remote(self.run_id, self.context, seal(self.secrets, worker.public))
        worker.opened.add(self.run_id)

    def chunk_size(self, iterations: int, limit: int) -> int:
        """Enough chunks to keep the window full four times over, each at most MAX_CHUNK long."""
        return max(1, min(MAX_CHUNK, iterations // (4 * max(1, limit))))

    def submit(self, unit: Unit) -> Any:
        return self._run(unit)

    async def _run(self, unit: Unit) -> None:
        spec = unit.describe()
        scope = None
        if isinstance(spec, IterationsSpec):
            scope = self._scope_ref(spec.scope_vars)
            spec.scope_vars = None
        snapshots = {name: self._snapshot(name, version) for name, version in spec.stores.items()}
        result = await self._call(unit, spec, snapshots, scope)
        await unit.absorb(result)

    def _scope_ref(self, shipment: LoopShipment) -> Any:
        if shipment.handle is None:
            shipment.handle = self.ray.put(flatten_scope(shipment.scope, self.mission_scope))
        return shipment.handle

    mission_scope: Any = None  # the driver's: flattening a loop's scope stops there
    keeper: Any = None  # the run's GateKeeper actor, if any

    def _snapshot(self, name: str, version: int) -> Any:
        ref = self._snapshots.get((name, version))
        if ref is None:
            for old in [k for k in self._snapshots if k[0] == name]:
                del self._snapshots[old]
            ref = self._snapshots[(name, version)] = self.ray.put(self.stores[name].items())
        return ref

    async def _call(self, unit: Unit, spec: Any, snapshots: dict[str, Any], scope: Any) -> UnitResult:
        unit_id = uuid.uuid4().hex
        for _ in range(3):
            worker = self.pool.least_busy()
            worker.load += 1
            try:
                ref = worker.actor.run_unit.remote(self.run_id, unit_id, spec, snapshots, scope)
                result = await self._await(ref, unit, worker, unit_id)
            finally:
                worker.load -= 1
            if not (isinstance(result, str) and result == _NEEDS_RUN):
                return result
            try:  # a restarted worker: open the run there again, then send the unit again
                await self._open(worker)
            except self.ray.exceptions.RayError:
                continue
        raise RunError("runtime", "no Ray worker could open the run")

    async def _await(self, ref: Any, unit: Unit, worker: _Worker, unit_id: str) -> Any:
        ray = self.ray
        try:
            return await ref
        except asyncio.CancelledError:
            ray.cancel(ref)  # cancels the remote coroutine: its HTTP requests are aborted
            late = await asyncio.shield(self._settled(ref))
            if late is not None:
                return late  # it had ended before the cancellation reached it: keep what it did
            await asyncio.shield(self._note_cancelled_at(unit, worker, unit_id))
            raise
        except ray.exceptions.RayActorError as exc:
            raise RunError("runtime", f"the Ray worker running this unit died ({_first_line(exc)})") from None
        except ray.exceptions.WorkerCrashedError:
            raise RunError("runtime", "the Ray worker running this unit died") from None
        except ray.exceptions.RayTaskError as exc:
            raise RunError("runtime", f"a Ray worker failed: {_first_line(exc)}") from None

    async def _settled(self, ref: Any) -> UnitResult | None:
        """Wait until a cancelled unit has really stopped (§7.1: nothing outlives its stage);
        its result if it had finished all the same."""
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(ref.future()), CANCEL_GRACE_S)
        except Exception:
            return None
        return result if isinstance(result, UnitResult) else None

    async def _note_cancelled_at(self, unit: Unit, worker: _Worker, unit_id: str) -> None:
        try:
            span = await asyncio.wait_for(worker.actor.cancelled_at.remote(self.run_id, unit_id), CANCEL_GRACE_S)
        except Exception:
            return
        unit.cancelled_at(span)

    async def close(self) -> None:
        ray = self.ray
        closing = [w.actor.close_run.remote(self.run_id) for w in self.pool.workers if self.run_id in w.opened]
        if closing:
            try:
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), 10)
            except TimeoutError:
                pass
        self._snapshots.clear()
        if self.keeper is not None:
            ray.kill(self.keeper)
            self.keeper = None
        if self.started_ray:
            _POOLS.clear()
            await asyncio.to_thread(ray.shutdown)
