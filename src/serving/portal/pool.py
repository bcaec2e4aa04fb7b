"""A bounded pool for inference: ``workers`` threads running, at most ``queue`` requests waiting.

A request is admitted *before* its upload is read; when ``workers + queue`` requests are already admitted
it is refused at once (the portal answers 503 with ``Retry-After``), so neither memory nor latency grows with
the number of clients. A request's slot is freed only when its job has ended in its thread (or was cancelled
before it started): a client that disconnects does not free a worker that is still busy for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = ["PoolFullError", "Ticket", "WorkerPool"]

T = TypeVar("T")


class PoolFullError(Exception):
    """Every worker is busy and the waiting queue is full."""


class Ticket:
    """One admitted request's slot; :meth:`release` frees it (once) and runs its clean-ups."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool
        self._lock = threading.Lock()
        self._cleanups: list[Callable[[], Any]] = []
        self.released = False
        self.submitted = False

    def on_release(self, cleanup: Callable[[], Any]) -> None:
        """Run ``cleanup`` when the slot is freed (e.g. remove the request's scratch folder)."""
        self._cleanups.append(cleanup)

    def release(self) -> None:
        with self._lock:
            if self.released:
                return
            self.released = True
        try:
            for cleanup in reversed(self._cleanups):
                cleanup()
        finally:
            self._pool._free()


class WorkerPool:
    """``workers`` inference threads and an admission limit of ``workers + queue`` requests."""

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"workers must be >= 1 and queue >= 0, got {workers} and {queue}")
        self.workers = workers
        self.queue = queue
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="portal-worker")
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0

    @property
    def capacity(self) -> int:
        return self.workers + self.queue

    def admit(self) -> Ticket:
        """A slot for one request, or :class:`PoolFullError` at once when there is none."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise PoolFullError(
                    f"{self._running} requests running and {self._admitted - self._running} waiting"
                )
            self._admitted += 1
        return Ticket(self)

    def _free(self) -> None:
        with self._lock:
            self._admitted -= 1

    async def run(self, ticket: Ticket, function: Callable[[], T]) -> T:
        """Run ``function`` on a worker thread; ``ticket`` is freed once it has ended (or never started)."""

        def job() -> T:
            with self._lock:
                self._running += 1
            try:
                return function()
            finally:
                with self._lock:
                    self._running -= 1

        future: Future[T] = self._executor.submit(job)
        ticket.submitted = True
        future.add_done_callback(lambda _: ticket.release())
        return await asyncio.wrap_future(future)

    def stats(self) -> dict[str, int]:
        """Workers, queue length, and how many requests are running and waiting now."""
        with self._lock:
            running, admitted = self._running, self._admitted
        return {
            "workers": self.workers,
            "queue": self.queue,
            "running": running,
            "waiting": max(0, admitted - running),
        }

    def shutdown(self) -> None:
        """Stop accepting jobs; jobs already running finish in their threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
