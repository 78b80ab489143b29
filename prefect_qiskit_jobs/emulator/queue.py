"""The queue model: one FIFO per backend, a number of execution slots, and a queue delay.

A job is created Queued and may start once it has waited ``queue_delay`` seconds and reached the
head of its backend's queue with a slot free; it then runs on a worker thread while the API keeps
answering. A job that runs past its maximum execution time ends Cancelled with reason code 1305,
as IBM reports it; a job marked for a scripted failure ends Failed with the given reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import execution, sessions
from .store import JobRecord, JobStore, utcnow

if TYPE_CHECKING:
    from .catalog import Catalog
    from .config import EmulatorConfig

logger = logging.getLogger(__name__)

RAN_TOO_LONG_CODE = 1305
RAN_TOO_LONG_REASON = "Job ran longer than the maximum execution time"
FAILED_CODE = 1500
CANCELLED_REASON = "Job cancelled by the user"
SESSION_CANCELLED_REASON = "Job cancelled because its session was cancelled"


class QueueModel:
    """Starts queued jobs when the model allows and records how each one ends."""

    def __init__(self, store: JobStore, catalog: Catalog, config: EmulatorConfig) -> None:
        self.store = store
        self.catalog = catalog
        self.config = config
        self._wake = asyncio.Event()
        self._executions: dict[str, asyncio.Task[None]] = {}
        # Running jobs whose cancel IBM has accepted but not yet carried out, with its reason.
        self._stopping: dict[str, str] = {}
        workers = config.concurrency * max(1, len(catalog.devices)) + 2
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emulator-exec")
        self._loop_task: asyncio.Task[None] | None = None

    # ----- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Requeue jobs a previous emulator left Running, then start scheduling."""
        for job in list(self.store.jobs.values()):
            if job.status == "Running":
                self.store.update_job(job.id, status="Queued", running=None)
        self._loop_task = asyncio.create_task(self._schedule_forever(), name="emulator-queue")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._executions.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._pool.shutdown(wait=False, cancel_futures=True)

    def notify(self) -> None:
        """Something changed (a job was created, released or ended): look at the queues again."""
        self._wake.set()

    # ----- what the API reads --------------------------------------------------------------
    def queued(self, backend: str) -> list[JobRecord]:
        jobs = [j for j in self.store.jobs.values() if j.backend == backend and j.status == "Queued"]
        return sorted(jobs, key=lambda j: (j.created, j.id))

    def positions(self) -> dict[str, int]:
        """1-based position of every queued job within its backend's queue."""
        by_backend: dict[str, list[JobRecord]] = defaultdict(list)
        for job in self.store.jobs.values():
            if job.status == "Queued":
                by_backend[job.backend].append(job)
        out: dict[str, int] = {}
        for jobs in by_backend.values():
            for index, job in enumerate(sorted(jobs, key=lambda j: (j.created, j.id)), start=1):
                out[job.id] = index
        return out

    def queue_length(self, backend: str) -> int:
        return sum(1 for j in self.store.jobs.values() if j.backend == backend and not j.is_final)

    def estimated_start(self, job: JobRecord, position: int | None) -> datetime | None:
        if job.status != "Queued":
            return job.running
        ahead = max(0, (position or 1) - 1) // self.config.concurrency
        return max(job.eligible_at, utcnow()) + timedelta(seconds=ahead * max(self.config.min_run_seconds, 1))

    # ----- what the API changes ------------------------------------------------------------
    def release(self, job_id: str) -> None:
        """Let a queued job start as soon as it reaches a free slot (tests skip the queue delay)."""
        self.store.update_job(job_id, eligible_at=utcnow())
        self.notify()

    def cancel(self, job_id: str, reason: str = CANCELLED_REASON, at_once: bool = False) -> bool:
        """Cancel a non-final job; False when it is already final.

        A Queued job is Cancelled at once. A Running one, with its backend's cancel latency, stays
        Running that long (its result, should it finish meanwhile, is dropped), then ends Cancelled;
        ``at_once`` skips that (the admin reset, which forgets the job right after).
        """
        job = self.store.jobs[job_id]
        if job.is_final:
            return False
        latency = self.config.cancel_latency_of(job.backend)
        if job.status == "Running" and latency > 0 and not at_once:
            if job_id not in self._stopping:
                self._stopping[job_id] = reason
                asyncio.get_running_loop().call_later(latency, self._stop, job_id)
            return True
        return self._cancel_now(job_id, job.status, reason)

    def _stop(self, job_id: str) -> None:
        reason = self._stopping.pop(job_id, CANCELLED_REASON)
        job = self.store.jobs.get(job_id)
        if job is not None and not job.is_final:
            self._cancel_now(job_id, job.status, reason)

    def _cancel_now(self, job_id: str, status: str, reason: str) -> bool:
        if not self._finish(job_id, status, status="Cancelled", reason=reason):
            return False
        task = self._executions.pop(job_id, None)
        if task is not None:
            task.cancel()
        self.notify()
        return True

    def settle_sessions(self) -> float | None:
        """End sessions past their maximum TTL (failing their queued jobs), deactivate idle ones.

        Returns the seconds until the next session reaches such a moment. The scheduler calls it
        each cycle; routes call it first, so that an answer never shows a session as still open.
        """
        return sessions.tick(self.store, self._fail_for_session, utcnow())

    def _fail_for_session(self, job_id: str, reason: str) -> None:
        if self._finish(
            job_id, "Queued", status="Failed", reason=reason, reason_code=sessions.SESSION_ENDED_CODE
        ):
            self.notify()

    # ----- scheduling ----------------------------------------------------------------------
    async def _schedule_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                timeout = _sooner(self._start_eligible(), self.settle_sessions())
            except Exception:  # one bad record must not stop every queue for good
                logger.exception("the emulator's scheduler failed; retrying in a second")
                timeout = 1.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _start_eligible(self) -> float | None:
        """Start what may start; return the seconds until the next job becomes eligible."""
        now = utcnow()
        next_due: float | None = None
        running: defaultdict[str, int] = defaultdict(int)
        for job_id in self._executions:
            # A job can leave the store (reset, delete) a moment before its execution is popped.
            job = self.store.jobs.get(job_id)
            if job is not None:
                running[job.backend] += 1
        for device in self.catalog.devices.values():  # mock twins' dry runs queue too
            for job in self.queued(device.name):
                if running[device.name] >= self.config.concurrency:
                    break
                if job.eligible_at > now:
                    wait = (job.eligible_at - now).total_seconds()
                    next_due = wait if next_due is None else min(next_due, wait)
                    break
                running[device.name] += 1
                self._begin(job)
        return next_due

    def _finish(self, job_id: str, expect: str, **changes: object) -> bool:
        """End a job still in ``expect`` (first writer wins) and let its session follow."""
        job = self.store.finish_job(job_id, expect, **changes)
        if job is None:
            return False
        sessions.job_ended(self.store, job)
        return True

    def _begin(self, job: JobRecord) -> None:
        sessions.job_started(self.store, self.store.update_job(job.id, status="Running", running=utcnow()))
        task = asyncio.create_task(self._execute(job.id), name=f"emulator-job-{job.id}")
        self._executions[job.id] = task
        task.add_done_callback(functools.partial(self._executed, job.id))

    def _executed(self, job_id: str, _task: asyncio.Task[None]) -> None:
        self._executions.pop(job_id, None)
        self.notify()

    async def _execute(self, job_id: str) -> None:
        job = self.store.jobs[job_id]
        started = time.monotonic()
        try:
            body = await asyncio.wait_for(self._run(job), timeout=job.max_execution_time)
        except TimeoutError:
            self._finish(
                job_id,
                "Running",
                status="Cancelled",
                reason=RAN_TOO_LONG_REASON,
                reason_code=RAN_TOO_LONG_CODE,
            )
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.info("job %s failed: %s", job_id, exc)
            self._finish(job_id, "Running", status="Failed", reason=str(exc), reason_code=FAILED_CODE)
            return
        if self.store.jobs.get(job_id, job).status != "Running" or job_id in self._stopping:
            return  # cancelled while the thread finished: the cancel stands, the result is dropped
        self.store.put_result(job_id, body)
        charged = self.config.job_qpu_seconds
        if charged is None:
            charged = round(time.monotonic() - started, 3)
        self._finish(job_id, "Running", status="Completed", quantum_seconds=charged)

    async def _run(self, job: JobRecord) -> str:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        if job.scripted_failure:
            raise RuntimeError(job.scripted_failure)
        device = self.catalog.get(job.backend)
        if device is None:
            raise RuntimeError(f"backend {job.backend} is no longer served")
        if job.params is None:
            raise RuntimeError(f"job {job.id} has no params left to run")
        seed = int(hashlib.sha256(job.id.encode()).hexdigest()[:8], 16)

        body = await loop.run_in_executor(
            self._pool, execution.execute, job.program_id, job.params, device, seed
        )
        remaining = self.config.min_run_seconds - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        return body


def _sooner(first: float | None, second: float | None) -> float | None:
    """The nearer of two optional delays (None: never)."""
    if first is None or second is None:
        return second if first is None else first
    return min(first, second)
