"""BackupWriter: ``SESSION_BACKUP_ASYNC`` writes after the response, on a bounded pool.

Each session key hashes to one worker thread, so the writes of one session stay in order (a
later write can never be overtaken by an earlier one). Every worker has a bounded queue
(``BACKUP_QUEUE_SIZE`` split across ``BACKUP_THREAD_COUNT`` workers); when a queue is full the
request thread performs the write itself. That is the stated policy: back-pressure, never an
unbounded queue and never a dropped write. ``flush()`` runs at interpreter exit.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable

from .stats import statistics

logger = logging.getLogger(__name__)
Job = Callable[[], None]


class BackupWriter:
    """A fixed set of worker threads with bounded queues, started on first use."""

    def __init__(self, threads: int, queue_size: int):
        self._queues: list[queue.Queue[Job]] = [
            queue.Queue(maxsize=max(1, queue_size // threads)) for _ in range(threads)
        ]
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()

    def _ensure_started(self) -> None:
        if self._threads:
            return
        with self._start_lock:
            if not self._threads:
                for index, jobs in enumerate(self._queues):
                    worker = threading.Thread(
                        target=self._work, args=(jobs,), name=f"msm-backup-{index}", daemon=True
                    )
                    worker.start()
                    self._threads.append(worker)
                atexit.register(self.flush)

    def submit(self, key: str, job: Job) -> None:
        """Queue ``job`` behind the earlier writes of the same session, or run it now if full."""
        self._ensure_started()
        jobs = self._queues[zlib.crc32(key.encode()) % len(self._queues)]
        try:
            jobs.put_nowait(job)
        except queue.Full:
            statistics.incr("backup_queue_full")
            _run(job)

    def _work(self, jobs: queue.Queue[Job]) -> None:
        while True:
            job = jobs.get()
            try:
                _run(job)
            finally:
                jobs.task_done()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued write is done, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while any(jobs.unfinished_tasks for jobs in self._queues):
            if time.monotonic() >= deadline:
                logger.warning("backup writes still queued at shutdown")
                return False
            time.sleep(0.005)
        return True


def _run(job: Job) -> None:
    try:
        job()
    except Exception:  # a write failure must not kill the worker; it is logged and counted
        statistics.incr("async_write_failures")
        logger.exception("asynchronous session write failed")
