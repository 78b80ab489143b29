"""One watcher per process multiplexes every awaited job.

Waits register jobs and receive a snapshot each time a job's status (or queue position) changes.
The watcher reads statuses in batches: the jobs of one flow run share a tag, and one request for
that tag's *pending* jobs answers for all of them; a job missing from that answer has ended, and
one read gets its final state and reason. Each job's schedule backs off exponentially with jitter,
restarts when its status changes, and stretches to honour ``Retry-After``. Transient errors count
against the policy's error budget, and only an exhausted budget reaches the waits.

The watcher runs on its own event loop in a daemon thread, so waits on any event loop or thread
share it; its blocking reads run on a small thread pool, never one thread per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .exceptions import IQPError, IQPUnavailableError
from .models import JobRef, JobSnapshot, JobStatus, PollPolicy, PollState
from .runtime import IQPGateway, apply_metrics
from .tags import FLOW_RUN_PREFIX

logger = logging.getLogger(__name__)

Listener = Callable[[JobSnapshot | BaseException], None]
# Registrations arriving within this window are read together (many waits start at once).
COALESCE_SECONDS = 0.05
READ_THREADS = 4
# Queue positions come from one /metrics read per job: useful to show, never worth delaying a
# status read. They take one lane of their own, one read at a time, beside the status reads.
POSITION_READS_AT_ONCE = 1


@dataclass(eq=False)
class _Watched:
    """A job under watch: its schedule, its last snapshot and who wants to hear about it."""

    gateway: IQPGateway
    job: JobRef
    policy: PollPolicy
    due: float
    state: PollState = field(default_factory=PollState)
    last: JobSnapshot | None = None
    listeners: dict[int, Listener] = field(default_factory=dict)
    position_due: float = 0.0
    position_reading: bool = False

    @property
    def group(self) -> tuple[int, str | None]:
        """Jobs read together: same credentials and same flow-run tag."""
        tag = next((t for t in self.job.tags if t.startswith(FLOW_RUN_PREFIX)), None)
        return id(self.gateway), tag


class JobWatcher:
    """The process's multiplexing poller; get it with ``JobWatcher.shared()``."""

    _shared: JobWatcher | None = None
    _shared_lock = threading.Lock()

    def __init__(self, seed: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rng = random.Random(seed)
        self._watched: dict[tuple[int, str], _Watched] = {}
        self._ids = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="qiskit-job-watcher")
        self._position_lane = asyncio.Semaphore(POSITION_READS_AT_ONCE)
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
        handle = next(self._ids)
        self._loop.call_soon_threadsafe(self._add, gateway, job, policy, listener, handle)
        return handle

    def unwatch(self, gateway: IQPGateway, job_id: str, handle: int) -> None:
        self._loop.call_soon_threadsafe(self._remove, id(gateway), job_id, handle)

    def _add(
        self, gateway: IQPGateway, job: JobRef, policy: PollPolicy, listener: Listener, handle: int
    ) -> None:
        key = (id(gateway), job.job_id)
        watched = self._watched.get(key)
        if watched is None:
            watched = self._watched[key] = _Watched(gateway, job, policy, due=self._clock())
        elif watched.last is not None:
            listener(watched.last)
        watched.listeners[handle] = listener
        self._wake.set()

    def _remove(self, gateway_id: int, job_id: str, handle: int) -> None:
        watched = self._watched.get((gateway_id, job_id))
        if watched is not None and handle in watched.listeners:
            del watched.listeners[handle]
            if not watched.listeners:
                self._forget(watched)

    def _current(self, member: _Watched) -> bool:
        """Whether ``member`` is still the registration of its job (a reply may outlive it)."""
        return self._watched.get((id(member.gateway), member.job.job_id)) is member

    def _forget(self, member: _Watched) -> None:
        """Drop ``member``, never a newer registration of the same job that took its place."""
        if self._current(member):
            del self._watched[(id(member.gateway), member.job.job_id)]

    # ----- the loop (watcher thread) -----------------------------------------------------------
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._run())

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            if not any(w.due <= now for w in self._watched.values()):
                timeout = min((w.due for w in self._watched.values()), default=now + 3600) - now
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(timeout, 0))
                continue
            await asyncio.sleep(COALESCE_SECONDS)
            groups: dict[tuple[int, str | None], list[_Watched]] = defaultdict(list)
            for watched in self._watched.values():
                groups[watched.group].append(watched)
            now = self._clock()
            await asyncio.gather(
                *(
                    self._poll_group(tag, members)
                    for (_gateway, tag), members in groups.items()
                    if any(m.due <= now for m in members)
                )
            )

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def _poll_group(self, tag: str | None, members: list[_Watched]) -> None:
        """Read the group's statuses: one listing for a flow run's jobs, else one read per due job.

        An error reading one job concerns that job's waits only; an error listing concerns them all.
        """
        now = self._clock()
        listed: dict[str, JobSnapshot] = {}
        if tag is not None and len(members) > 1:
            try:
                pending = await self._call(members[0].gateway.list_jobs, tags=[tag], pending=True)
            except Exception as exc:
                for member in members:
                    self._failed(member, exc)
                return
            listed = {s.job_id: s for s in pending}
            targets = members
        else:
            targets = [m for m in members if m.due <= now]
        await asyncio.gather(*(self._read(member, listed.get(member.job.job_id)) for member in targets))

    async def _read(self, member: _Watched, listed: JobSnapshot | None) -> None:
        """Observe one job: from the listing, else by reading it (on the pool, beside the others)."""
        try:
            snapshot = listed or await self._call(member.gateway.read, member.job.job_id)
            await self._observe(member, snapshot)
        except Exception as exc:
            self._failed(member, exc)

    def _failed(self, member: _Watched, exc: Exception) -> None:
        """A read failed: back off when IBM may answer later; otherwise end the job's waits with an error.

        Whatever went wrong, the watcher itself goes on serving every other job.
        """
        if isinstance(exc, IQPUnavailableError):
            self._back_off(member, exc)
            return
        if not isinstance(exc, IQPError):
            # Not chained: the waits raise this, and only scrubbed text may reach logs and states.
            text = member.gateway.scrub(f"{type(exc).__name__}: {exc}")
            logger.warning("unexpected error reading job %s: %s", member.job.job_id, text)
            exc = IQPError(f"Could not read the status of job {member.job.job_id}: {text}")
        self._finish(member, exc)

    async def _observe(self, member: _Watched, snapshot: JobSnapshot) -> None:
        if not self._current(member):
            return  # a late reply for a registration that has ended
        now = self._clock()
        policy = member.policy
        if snapshot.status is JobStatus.QUEUED and policy.queue_position_every and member.position_due <= now:
            member.position_due = now + policy.queue_position_every
            self._start(self._refresh_position(member))
        if member.last is not None and snapshot.status is member.last.status:
            snapshot = snapshot.model_copy(
                update={
                    "position_in_queue": member.last.position_in_queue,
                    "estimated_start": member.last.estimated_start,
                }
            )
        changed = member.state.observe(snapshot.status)
        if changed and snapshot.status.is_final:
            with contextlib.suppress(IQPError):
                snapshot = apply_metrics(snapshot, await self._call(member.gateway.metrics, snapshot.job_id))
        moved = member.last is not None and snapshot.position_in_queue != member.last.position_in_queue
        member.last = snapshot
        if snapshot.status.is_final:
            self._finish(member, snapshot)
            return
        if changed or moved:
            self._notify(member, snapshot)
        member.due = self._clock() + member.state.next_delay(policy, self._rng)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh_position(self, member: _Watched) -> None:
        """Read a queued job's position on the position lane; tell its waits if it moved."""
        if member.position_reading:
            return
        member.position_reading = True
        try:
            async with self._position_lane:
                if not self._current(member):
                    return
                metrics = await self._call(member.gateway.metrics, member.job.job_id)
        except IQPError:
            return
        finally:
            member.position_reading = False
        last = member.last
        if last is None or last.status is not JobStatus.QUEUED:
            return
        updated = apply_metrics(last, metrics)
        if updated.position_in_queue != last.position_in_queue:
            member.last = updated
            self._notify(member, updated)

    def _back_off(self, member: _Watched, exc: IQPUnavailableError) -> None:
        member.state.fail()
        if member.state.consecutive_errors > member.policy.error_budget:
            self._finish(member, exc)
            return
        logger.debug("transient error polling %s: %s", member.job.job_id, exc)
        member.due = self._clock() + member.state.next_delay(member.policy, self._rng, exc.retry_after)

    def _notify(self, member: _Watched, item: JobSnapshot | BaseException) -> None:
        for listener in list(member.listeners.values()):
            try:
                listener(item)
            except Exception:  # a broken listener must not stop the others or the watcher
                logger.exception("listener of job %s failed", member.job.job_id)

    def _finish(self, member: _Watched, item: JobSnapshot | BaseException) -> None:
        if not self._current(member):
            return
        self._notify(member, item)
        self._forget(member)
