"""Where a job's tasks run: in this process, on a local process pool, or on Ray.

Every executor runs the same task functions: a module-level function taking one
picklable task (a frozen dataclass holding paths and :class:`~tam.runspec.BackendSpec`
values, never a model or an open file) and returning a small picklable result.
Tasks read their inputs from the project on disk and write their outputs there
atomically, so a task that runs twice (a retry after its worker died) writes
the same files again and a re-run of a killed job starts from what is on disk.

:meth:`Executor.run` yields ``(task index, result)`` as tasks finish, in any
order, and ``None`` about twice a second while tasks run, so the caller can show
progress and poll its :class:`~tam.runspec.RunContext` for a cancel. A task
whose worker process dies is run again, at most ``max_retries`` times; a task
that raises fails the run with that error.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tam.errors import Cancelled, TamError

TICK_S = 0.5  # how often run() calls tick() while tasks are running
DEFAULT_MAX_RETRIES = 3  # reruns of a task whose worker died
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the tam and inpaint packages
# imported once by the pool's fork server, so that a worker forked from it starts with the task
# functions and the classical backends loaded instead of importing them itself (about 0.8 s a worker)
WORKER_PRELOAD = ("tam.jobs.removal", "tam.jobs.tracking", "tam.track.classical", "inpaint.flow_guided",
                  "inpaint.exemplar")


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Resources:
    """What one task needs: CPU cores and GPUs (fractions allowed; GPUs count on Ray only)."""

    cpus: float = 1.0
    gpus: float = 0.0

    @classmethod
    def for_backend(cls, spec) -> "Resources":
        """One core per task running ``spec`` (a :class:`~tam.runspec.BackendSpec`); a GPU too for a neural
        backend not pinned to the CPU."""
        return cls(cpus=1.0, gpus=1.0 if spec.neural and spec.device != "cpu" else 0.0)


@dataclass(frozen=True)
class ExecutorSpec:
    """Which executor to build: ``serial``, ``pool`` (``workers`` processes, 0 = every core)
    or ``ray`` (``address`` of a cluster, None = a local Ray)."""

    kind: str = "pool"
    workers: int = 0
    address: str | None = None
    max_retries: int = DEFAULT_MAX_RETRIES

    def __post_init__(self):
        if self.kind not in ("serial", "pool", "ray"):
            raise TamError(f"executor must be serial, pool or ray, not {self.kind!r}")
        if self.workers < 0:
            raise TamError(f"--workers must be >= 1, got {self.workers}")
        if self.max_retries < 0:
            raise TamError(f"max_retries must be >= 0, got {self.max_retries}")

    def create(self) -> "Executor":
        if self.kind == "serial":
            return SerialExecutor()
        if self.kind == "pool":
            return PoolExecutor(self.workers or cpu_count(), self.max_retries)
        return RayExecutor(self.address, self.max_retries, num_cpus=self.workers or None)

    @property
    def parallel(self) -> bool:
        return self.kind == "ray" or (self.kind == "pool" and (self.workers or cpu_count()) > 1)


@contextmanager
def one_thread():
    """OpenCV on one thread while a task runs: a task is the unit of parallelism, and the
    results do not depend on how many threads the process was given."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_memory() -> None:
    """Give the heap memory this process has freed back to the system, where the C library allows it.

    A pool or Ray worker is reused for many tasks. glibc keeps the memory a task freed (large image
    buffers, decoded frames) in its arenas instead of returning it, and the next task does not reuse all
    of it, so without this a worker's resident memory climbs from task to task, although nothing is
    leaked. On Linux with glibc this calls ``malloc_trim(0)``; elsewhere (musl, macOS, Windows) it does
    nothing. It never raises."""
    trim = _malloc_trim()
    if trim is not None:
        try:
            trim(0)
        except Exception:  # noqa: BLE001 - releasing memory is best effort, never a task's failure
            pass


def call_task(fn: Callable[[Any], Any], task: Any) -> Any:
    """Run one task as every executor does; afterwards (also when it raises) the memory it freed is
    returned to the system (:func:`release_memory`)."""
    try:
        with one_thread():
            return fn(task)
    finally:
        release_memory()


def worker_info() -> dict:
    """Where this task ran: process id, Ray node (None off Ray) and the process's peak RSS in MiB."""
    import resource

    node = None
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        node = ray.get_runtime_context().get_node_id()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"pid": os.getpid(), "node": node, "peak_rss_mib": peak_kib / 1024.0}


class Executor(ABC):
    """Runs tasks; use as a context manager (workers are released on exit)."""

    name = "executor"
    workers = 1

    @abstractmethod
    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any], resources: Resources = Resources()
            ) -> Iterator[tuple[int, Any] | None]:
        """Yield ``(index into tasks, fn(task))`` as tasks finish, and ``None`` every
        :data:`TICK_S` seconds meanwhile; closing the generator abandons the tasks not started."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(Executor):
    """Every task in this process, one after another (the reference the others must match)."""

    name = "serial"

    def run(self, fn, tasks, resources=Resources()):
        for i, task in enumerate(tasks):
            yield i, call_task(fn, task)


class PoolExecutor(Executor):
    """A pool of ``workers`` local processes (forkserver: no thread of this process is inherited).

    When a worker dies (killed, out of memory), the pool is replaced and every task
    that had not finished runs again; a task is given up after ``max_retries`` such reruns.
    """

    name = "pool"

    def __init__(self, workers: int, max_retries: int = DEFAULT_MAX_RETRIES):
        if workers < 1:
            raise TamError(f"--workers must be >= 1, got {workers}")
        self.workers, self.max_retries = workers, max_retries
        self._pool = None

    def _new_pool(self):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(WORKER_PRELOAD))
        return ProcessPoolExecutor(self.workers, mp_context=ctx)

    def run(self, fn, tasks, resources=Resources()):
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        attempts = [0] * len(tasks)
        pending = set(range(len(tasks)))
        while pending:
            if self._pool is None:
                self._pool = self._new_pool()
            futures = {self._pool.submit(call_task, fn, tasks[i]): i for i in sorted(pending)}
            broken = False
            while futures:
                done, _ = wait(futures, timeout=TICK_S, return_when=FIRST_COMPLETED)
                if not done:
                    try:
                        yield None
                    except GeneratorExit:
                        self._abandon()
                        raise
                for fut in done:
                    i = futures.pop(fut)
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    pending.discard(i)
                    yield i, result
                if broken:
                    break
            if broken:
                self._abandon()
                for i in pending:
                    attempts[i] += 1
                    if attempts[i] > self.max_retries:
                        raise TamError(f"a worker process died {attempts[i]} times running task {i}; giving up")

    def _abandon(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def ray_runtime_env() -> dict:
    """The runtime environment Ray workers need to import this project: its sources on PYTHONPATH.

    On a cluster the sources must be at the same path on every node (shared storage)."""
    path = os.pathsep.join(p for p in (str(SOURCE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


class RayExecutor(Executor):
    """Tasks as Ray remote functions, on a local Ray (``address`` None) or a cluster.

    Joins a Ray session already started in this process (as tests do); otherwise
    starts or connects one and shuts it down on :meth:`close`. Ray reruns a task
    whose worker died (``max_retries``); a task that raises is not retried.
    """

    name = "ray"

    def __init__(self, address: str | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
                 num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise TamError("--ray needs the ray package (pip install ray==2.60.0)") from None
        self._ray, self.max_retries = ray, max_retries
        self._owned = not ray.is_initialized()
        if self._owned:
            kwargs = {"runtime_env": ray_runtime_env(), "log_to_driver": False, "include_dashboard": False}
            if address:
                kwargs["address"] = address
            elif num_cpus:
                kwargs["num_cpus"] = num_cpus
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise TamError(f"cannot start or reach Ray{' at ' + address if address else ''}: "
                               f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        self._remotes: dict = {}

    def _remote(self, fn, resources: Resources):
        gpus = resources.gpus if self._ray.cluster_resources().get("GPU", 0) >= resources.gpus else 0.0
        key = (resources.cpus, gpus)
        if key not in self._remotes:
            self._remotes[key] = self._ray.remote(_ray_call).options(
                num_cpus=resources.cpus, num_gpus=gpus, max_retries=self.max_retries,
                retry_exceptions=False)
        return self._remotes[key]

    def run(self, fn, tasks, resources=Resources()):
        ray = self._ray
        remote = self._remote(fn, resources)
        refs = {remote.remote(fn, task): i for i, task in enumerate(tasks)}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1, timeout=TICK_S)
                if not done:
                    yield None
                for ref in done:
                    i = refs.pop(ref)
                    yield i, self._get(ref)
        finally:
            for ref in refs:
                ray.cancel(ref)

    def _get(self, ref):
        from ray.exceptions import RayTaskError, WorkerCrashedError

        try:
            return self._ray.get(ref)
        except RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, (TamError, ValueError, MemoryError, Cancelled)):
                raise cause from None
            raise TamError(f"a task failed on Ray: {str(e).strip().splitlines()[-1]}") from None
        except WorkerCrashedError:
            raise TamError(f"a Ray worker died {self.max_retries + 1} times running one task; giving up") from None

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def _ray_call(fn, task):
    return call_task(fn, task)


def drain(events: Iterator) -> Any:
    """Run a job's event generator (``run_removal``, ``run_tracking``) to its end, ignoring its progress
    events, and return what it returns (its tasks' results)."""
    while True:
        try:
            next(events)
        except StopIteration as done:
            return done.value
