"""The decode processes: one worker per slot, each decode under a CPU and a memory budget, all dying with the hasher.

A file from outside can make a decoder spin (a JPEG of thousands of scans) or allocate without end (a
few bytes that claim gigapixels). Each decode therefore runs in a worker process of its own slot:

- under a CPU-time interval timer (`ITIMER_PROF`: the kernel stops the worker with SIGPROF once the decode
  has used PAKTUM_DECODE_CPU_SECONDS of CPU, to the millisecond), `RLIMIT_CPU` a whole second or so beyond
  it as a backstop (SIGXCPU), and a wall-clock watchdog in the hasher (a worker that stalls without
  spending CPU is killed too);
- under `RLIMIT_AS` (PAKTUM_DECODE_MEMORY_MIB above what the worker holds before it starts), a backstop to
  the estimate `decode_image` checks before it decodes: an allocation past it fails as MemoryError;
- and when a worker dies, only the decode it was running fails, with the cause (its CPU budget, the OOM
  killer's SIGKILL, a crash), the worker is replaced, and the other slots carry on: one bomb costs its own
  post, not its batch (a ProcessPoolExecutor would break for every decode in flight).

Workers are forked from a fork server that holds the decoder (Pillow, numpy, imagehash and its DCT) and the
program's main module, so a replacement starts in milliseconds. The fork server leaves when the hasher does
(multiprocessing closes it on EOF of its pipe); every worker asks the kernel for SIGKILL when its parent
(the fork server) goes, so a SIGKILLed hasher leaves no decode process behind.

The pool is an Executor: `loop.run_in_executor(pool, decode_image, ...)` runs a decode. This module
imports nothing heavy: the workers' entry point is pickled by reference to it.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import resource
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from paktum_common.errors import BadImageError
from paktum_common.settings import Settings

PRELOAD = ["__main__", "paktum_hasher.pool", "paktum_hasher.decode"]
# A decode is also killed once it has taken this many times its CPU budget in wall-clock time: a worker
# waiting on a busy machine is not at fault below that, one blocked on something is.
WALL_FACTOR = 4.0
WALL_MIN_SECONDS = 30.0
# Room above the memory budget for what a decode holds besides the pixels: its input, the interpreter.
AS_SLACK_BYTES = 256 * 1024 * 1024
STOP_SECONDS = 5.0

_PR_SET_PDEATHSIG = 1


class DecodeAbortedError(BadImageError):
    """A decode stopped from outside: over its CPU budget, stuck, or its worker killed (the OOM killer)."""


def memory_refusal(memory_mib: int) -> str:
    """The reason given for a decode that would not fit its memory budget (shared with decode.py)."""
    return f"too large to decode in {memory_mib} MiB (PAKTUM_DECODE_MEMORY_MIB)"


class DecodePool(Executor):
    """`workers` decode processes; `submit` runs a call in one of them under the budgets."""

    def __init__(self, workers: int, cpu_seconds: float, memory_mib: int, wall_seconds: float | None = None) -> None:
        self.cpu_seconds = cpu_seconds
        self.memory_mib = memory_mib
        self.wall_seconds = wall_seconds or max(WALL_MIN_SECONDS, cpu_seconds * WALL_FACTOR)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(PRELOAD)  # read when the fork server starts
        # One thread per slot; each thread keeps its own worker process (thread-local), so a slot never waits
        # for another's worker and at most `workers` processes exist.
        self._slots = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paktum-decode")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()
        self._closing = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._slots.submit(self._call, fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closing = True
        self._slots.shutdown(wait=wait, cancel_futures=cancel_futures)
        with self._lock:
            workers = [w for w in self._workers if wait or not w.busy]
        for worker in workers:
            self._retire(worker)

    def worker_pids(self) -> list[int]:
        """The decode processes alive now (for tests and the bench)."""
        with self._lock:
            return [w.process.pid for w in self._workers if w.process.pid is not None]

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is None or not worker.process.is_alive():
            worker = self._start()
        try:
            return worker.call(fn, args, kwargs, self)
        finally:
            if not worker.process.is_alive() or self._closing:
                self._retire(worker)
                self._local.worker = None

    def _start(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=serve,
            args=(child_end, self.cpu_seconds, self.memory_mib),
            name="paktum-decode",
            daemon=True,
        )
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        with self._lock:
            self._workers.add(worker)
        self._local.worker = worker
        return worker

    def _retire(self, worker: _Worker) -> None:
        worker.stop()
        with self._lock:
            self._workers.discard(worker)


class _Worker:
    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.busy = False

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], pool: DecodePool) -> Any:
        self.busy = True
        try:
            try:
                self.conn.send((fn, args, kwargs))
                if not self.conn.poll(pool.wall_seconds):
                    self.process.kill()
                    self.process.join()
                    raise DecodeAbortedError(
                        f"decode stopped after {pool.wall_seconds:.0f} s without finishing (stuck, or a machine "
                        "too busy for PAKTUM_DECODE_CPU_SECONDS)"
                    )
                ok, value = self.conn.recv()
            except (EOFError, OSError):
                self.process.join()
                raise death_reason(self.process.exitcode, pool.cpu_seconds, pool.memory_mib) from None
        finally:
            self.busy = False
        if ok:
            return value
        raise value

    def stop(self) -> None:
        """Let an idle worker leave (EOF on its pipe), kill it if it does not."""
        self.conn.close()
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def death_reason(exitcode: int | None, cpu_seconds: float, memory_mib: int) -> DecodeAbortedError:
    """Why a worker died, as the dead letter says it."""
    if exitcode in (-signal.SIGPROF, -signal.SIGXCPU):
        return DecodeAbortedError(
            f"decode took more than {cpu_seconds:g} s of CPU (PAKTUM_DECODE_CPU_SECONDS); stopped"
        )
    if exitcode == -signal.SIGKILL:
        return DecodeAbortedError(
            "the decode worker was killed by SIGKILL while decoding this file (the out-of-memory killer?); "
            f"each decode may use {memory_mib} MiB (PAKTUM_DECODE_MEMORY_MIB)"
        )
    if exitcode is not None and exitcode < 0:
        return DecodeAbortedError(
            f"the decode worker died of {signal.Signals(-exitcode).name} while decoding this file"
        )
    return DecodeAbortedError(f"the decode worker exited (code {exitcode}) while decoding this file")


# In the worker process.


def serve(conn: Connection, cpu_seconds: float, memory_mib: int) -> None:
    """A worker's loop: one call at a time, each under the budgets, until the hasher closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the hasher's: a decode in flight finishes
    _die_with_parent()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a worker stopped by SIGXCPU leaves no core file
    signal.signal(signal.SIGPROF, signal.SIG_DFL)  # the CPU budget's timer: its default action ends the worker
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        _set_budgets(cpu_seconds, memory_mib)
        try:
            result: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except MemoryError:
            result = (False, BadImageError(memory_refusal(memory_mib)))
        except Exception as exc:
            result = (False, exc)
        _lift_budgets()  # the answer must be picklable whatever the decode left, and sent in whatever time
        conn.send(result)


def _die_with_parent() -> None:
    """SIGKILL when the fork server (this worker's parent) exits; it exits with the hasher (Linux only)."""
    parent = os.getppid()
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent left before the request took effect
        os._exit(1)


def _set_budgets(cpu_seconds: float, memory_mib: int) -> None:
    # RLIMIT_CPU is the backstop to the CPU timer armed last. It counts the process's whole life in whole
    # seconds: allow this call at least `cpu_seconds` more than used so far, and at most a second beyond.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu_soft = math.ceil(used + cpu_seconds) + 1
    if cpu_hard == resource.RLIM_INFINITY or cpu_soft <= cpu_hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, cpu_hard))
    mapped = _address_space_bytes()
    if mapped is not None:
        _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
        as_soft = mapped + memory_mib * 1024 * 1024 + AS_SLACK_BYTES
        if as_hard == resource.RLIM_INFINITY or as_soft <= as_hard:
            resource.setrlimit(resource.RLIMIT_AS, (as_soft, as_hard))
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)  # the CPU time of this call alone, to the millisecond


def _lift_budgets() -> None:
    signal.setitimer(signal.ITIMER_PROF, 0)
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (as_hard, as_hard))


def _address_space_bytes() -> int | None:
    """What this process has mapped now (VmSize), None where /proc cannot say."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def new_decode_pool(settings: Settings) -> DecodePool:
    return DecodePool(settings.hasher_workers, settings.decode_cpu_seconds, settings.decode_memory_mib)
