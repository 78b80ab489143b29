"""One watcher per process multiplexes every awaited job.

Waits register jobs and receive a snapshot each time a job's status (or queue position) changes.
What to read and when is decided by ``Schedule`` (pure, see ``schedule.py``); this module carries
it out: each read runs on its own, on a small thread pool (never a thread per job), and its answer
goes back to the schedule as soon as it comes, so a slow or hung read (bounded by the client's
read timeout) holds up its own group only. Transient errors count against the policy's error
budget, and only an exhausted budget reaches the waits.

The watcher runs on its own event loop in a daemon thread, so waits on any event loop or thread
share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prefect_qiskit_jobs.errors import IQPError
from prefect_qiskit_jobs.ibm.gateway import IQPGateway
from prefect_qiskit_jobs.ibm.mapping import apply_metrics
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, PollPolicy
from prefect_qiskit_jobs.wait.schedule import (
    ListGroup,
    Member,
    Outage,
    Read,
    ReadJob,
    ReadPosition,
    Schedule,
    Update,
)

logger = logging.getLogger(__name__)

Listener = Callable[[JobSnapshot | BaseException | Outage], None]
# Status reads of different groups (and of jobs read alone) run side by side, this many at once.
READ_THREADS = 8
# Queue positions are worth showing, never worth delaying a status read: one at a time, beside them.
POSITION_READS_AT_ONCE = 1


@dataclass(eq=False)
class _Watched:
    """A job under watch: its place in the schedule and who wants to hear about it."""

    member: Member
    listeners: dict[int, Listener] = field(default_factory=dict)


class JobWatcher:
    """The process's multiplexing poller; get it with ``JobWatcher.shared()``."""

    _shared: JobWatcher | None = None
    _shared_lock = threading.Lock()

    def __init__(self, seed: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._schedule = Schedule(clock, random.Random(seed))
        self._watched: dict[tuple[int, str], _Watched] = {}
        self._ids = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="qiskit-job-watcher")
        self._position_pool = ThreadPoolExecutor(
            max_workers=POSITION_READS_AT_ONCE, thread_name_prefix="qiskit-job-positions"
        )
        self._background: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._thread = threading.Thread(target=self._serve, name="qiskit-job-watcher", daemon=True)
        self._thread.start()

    @classmethod
    def shared(cls) -> JobWatcher:
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = JobWatcher()
            return cls._shared

    # ----- registration (any thread) ---------------------------------------------------------
    def watch(self, gateway: IQPGateway, job: JobRef, policy: PollPolicy, listener: Listener) -> int:
        """Start telling ``listener`` about ``job``; returns a handle for ``unwatch``."""
        (handle,) = self.watch_many(gateway, [(job, listener)], policy)
        return handle

    def watch_many(
        self, gateway: IQPGateway, jobs: Sequence[tuple[JobRef, Listener]], policy: PollPolicy
    ) -> list[int]:
        """``watch`` each (job, listener) pair in one hand-over to the watcher's loop."""
        handles = [next(self._ids) for _ in jobs]
        added = [(job, listener, handle) for (job, listener), handle in zip(jobs, handles, strict=True)]
        self._loop.call_soon_threadsafe(self._add_all, gateway, added, policy)
        return handles

    def unwatch(self, gateway: IQPGateway, job_id: str, handle: int) -> None:
        self.unwatch_many(gateway, [(job_id, handle)])

    def unwatch_many(self, gateway: IQPGateway, handles: Sequence[tuple[str, int]]) -> None:
        """``unwatch`` each (job id, handle) pair in one hand-over."""
        self._loop.call_soon_threadsafe(self._remove_all, id(gateway), list(handles))

    def _add_all(
        self, gateway: IQPGateway, added: list[tuple[JobRef, Listener, int]], policy: PollPolicy
    ) -> None:
        for job, listener, handle in added:
            self._add(gateway, job, policy, listener, handle)

    def _remove_all(self, gateway_id: int, handles: list[tuple[str, int]]) -> None:
        for job_id, handle in handles:
            self._remove(gateway_id, job_id, handle)

    def _add(
        self, gateway: IQPGateway, job: JobRef, policy: PollPolicy, listener: Listener, handle: int
    ) -> None:
        key = (id(gateway), job.job_id)
        watched = self._watched.get(key)
        if watched is None:
            watched = self._watched[key] = _Watched(Member(gateway, job, policy))
            self._schedule.add(watched.member)
        elif watched.member.last is not None:
            listener(watched.member.last)
        watched.listeners[handle] = listener
        self._wake.set()

    def _remove(self, gateway_id: int, job_id: str, handle: int) -> None:
        watched = self._watched.get((gateway_id, job_id))
        if watched is not None and handle in watched.listeners:
            del watched.listeners[handle]
            if not watched.listeners:
                self._forget(watched.member)

    def _forget(self, member: Member) -> None:
        """Drop ``member``, never a newer registration of the same job that took its place."""
        self._schedule.remove(member)
        key = (id(member.gateway), member.job.job_id)
        watched = self._watched.get(key)
        if watched is not None and watched.member is member:
            del self._watched[key]

    # ----- the loop (watcher thread) -----------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._run())

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            for read in self._schedule.next_reads():
                self._start(self._perform(read))
            wake_at = self._schedule.wake_at()
            timeout = 3600.0 if wake_at is None else wake_at - self._schedule.now()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0.0))

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _perform(self, read: Read) -> None:
        """Carry out one read, then hand its answer (or its error) to the schedule and the waits."""
        updates: list[Update]
        try:
            if isinstance(read, ListGroup):
                jobs, complete = await self._call(
                    self._pool,
                    read.first.gateway.list_since,
                    tag=read.tag,
                    backend=read.backend,
                    created_after=read.created_after,
                    all_pages=read.all_pages,
                    read_on=read.read_on,
                )
                updates = self._schedule.listed(read, jobs, complete)
            elif isinstance(read, ReadJob):
                snapshot = await self._call(self._pool, read.member.gateway.read, read.member.job.job_id)
                updates = self._schedule.read_job(read, snapshot)
            else:
                updates = await self._read_position(read)
        except Exception as exc:
            updates = self._schedule.failed(read, self._as_error(read, exc))
        for update in updates:
            self._tell(update)
        self._wake.set()

    async def _read_position(self, read: ReadPosition) -> list[Update]:
        member = read.member
        metrics = await self._call(self._position_pool, member.gateway.metrics, member.job.job_id)
        last = member.last
        if last is None:
            return self._schedule.positioned(read, None)
        return self._schedule.positioned(read, apply_metrics(last, metrics))

    async def _call(self, pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(pool, lambda: fn(*args, **kwargs))

    @staticmethod
    def _as_error(read: Read, exc: Exception) -> Exception:
        """Our own errors as they are; anything else scrubbed of the token, as an ``IQPError``.

        Not chained: the waits raise this, and only scrubbed text may reach logs and states.
        """
        if isinstance(exc, IQPError):
            return exc
        member = read.first if isinstance(read, ListGroup) else read.member
        text = member.gateway.scrub(f"{type(exc).__name__}: {exc}")
        logger.warning("unexpected error reading job %s: %s", member.job.job_id, text)
        return IQPError(f"Could not read the status of job {member.job.job_id}: {text}")

    def _tell(self, update: Update) -> None:
        key = (id(update.member.gateway), update.member.job.job_id)
        watched = self._watched.get(key)
        if watched is None or watched.member is not update.member:
            return  # a late answer for a registration that has ended
        for listener in list(watched.listeners.values()):
            try:
                listener(update.item)
            except Exception:  # a broken listener must not stop the others or the watcher
                logger.exception("listener of job %s failed", update.member.job.job_id)
        if update.final:
            self._forget(update.member)
