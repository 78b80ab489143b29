"""The sensor under the wait tasks: hand the jobs to the process's watcher and report changes.

A wait never sleeps in a thread and never polls on its own: it registers with ``JobWatcher`` and
awaits the snapshots the watcher delivers, logging status changes and keeping its artifacts
current. When a wait is *interrupted* (the flow run cancelled: ``CancelledError``, Prefect's
``TerminationSignal``, or ``KeyboardInterrupt``) it cancels the jobs it owns, shielded and capped
in time, and lets the interruption go on. It owns the jobs its own flow run submitted (outside
any run: the jobs its process submitted), never a job handed to it by id from elsewhere, never a
detached one. Any other exception leaves every job alone.

``await_for_job`` awaits ``wait_one`` in the flow's event loop; ``wait_for_job`` runs it on an
event loop of its own in the flow's thread, so an interrupted sync wait cancels its jobs too.
Tasks run with ``.submit()`` or ``.map()`` sit on worker threads that Prefect does not interrupt
(the flow hooks and the reaper cover those).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
from collections.abc import Sequence

import anyio
from prefect.context import TaskRunContext
from prefect.exceptions import TerminationSignal
from prefect.logging import get_logger

from prefect_qiskit_jobs.blocks import CredentialsLike, aresolve_credentials
from prefect_qiskit_jobs.cancel.fan_out import Layer, cancel_jobs
from prefect_qiskit_jobs.errors import JobWaitTimeoutError
from prefect_qiskit_jobs.ibm.gateway import IQPGateway, gateway_for
from prefect_qiskit_jobs.ibm.mapping import apply_metrics
from prefect_qiskit_jobs.ibm.tags import owned_by
from prefect_qiskit_jobs.logs import id_list, run_logger
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, PollPolicy, job_id_of
from prefect_qiskit_jobs.wait.display import ARTIFACT_MIN_INTERVAL, WaitMonitor
from prefect_qiskit_jobs.wait.schedule import Outage
from prefect_qiskit_jobs.wait.watcher import JobWatcher

CANCEL_TIME_CAP = 60.0
# The last artifact update of an ending wait, shielded from its interruption, gets this long.
FLUSH_TIME_CAP = 10.0
# What interrupts a wait, as opposed to an error: only these make it cancel its jobs.
INTERRUPTS = (asyncio.CancelledError, TerminationSignal, KeyboardInterrupt)

# Job ids from elsewhere are read for their tags this many at a time.
RESOLVE_READS_AT_ONCE = 8
# Jobs seen final are read once more, for when they started (``_RecordReads``), this many at a time.
RECORD_READS_AT_ONCE = 8


Item = JobSnapshot | BaseException | Outage


class _Inbox:
    """What the watcher (on its own thread) tells one wait, handed over in batches.

    Items gather under a lock and the waiting loop is woken once per batch, not once per job:
    10,000 jobs seen in one listing are one wake-up, not 10,000.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[tuple[str, Item]] = []
        self._woken = False
        self._ready = asyncio.Event()

    def put(self, job_id: str, item: Item) -> None:
        """Add an item (from any thread); the first of a batch wakes the waiting loop."""
        with self._lock:
            self._items.append((job_id, item))
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(RuntimeError):  # the waiting loop has closed: nobody is listening
            self._loop.call_soon_threadsafe(self._ready.set)

    async def take(self) -> list[tuple[str, Item]]:
        """Every item so far, once there is one (possibly none, after a spurious wake-up)."""
        await self._ready.wait()
        with self._lock:
            self._ready.clear()
            self._woken = False
            items, self._items = self._items, []
        return items


async def await_jobs(
    jobs: Sequence[JobRef],
    *,
    credentials: CredentialsLike = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
    cancel_on_timeout: bool = True,
    monitor: WaitMonitor | None = None,
) -> list[JobSnapshot]:
    """Wait until every job is final; the engine under ``wait_for_job`` and ``wait_for_jobs``.

    Returns the final snapshots in the order of ``jobs``. Raises ``JobWaitTimeoutError`` when
    ``timeout`` seconds pass first (after cancelling the jobs it owns if ``cancel_on_timeout``),
    and ``IQPError`` when IBM stays unreachable beyond the poll policy's error budget.
    """
    policy = poll or PollPolicy()
    gateway = gateway_for(await aresolve_credentials(credentials))
    monitor = monitor or WaitMonitor(list(jobs), get_logger("prefect_qiskit_jobs.wait.sensor"), None, None)
    owner = _current_flow_run_id()
    watcher = JobWatcher.shared()
    inbox = _Inbox(asyncio.get_running_loop())
    listeners = [(job, functools.partial(inbox.put, job.job_id)) for job in jobs]
    handles = list(
        zip([job.job_id for job in jobs], watcher.watch_many(gateway, listeners, policy), strict=True)
    )
    finals: dict[str, JobSnapshot] = {}
    distinct = len({job.job_id for job in jobs})  # once: per snapshot it was quadratic in the jobs
    # Start times are read only where a display shows them: one /metrics request per job.
    records = _RecordReads(gateway, inbox, monitor) if monitor.task_run_id is not None else None

    def unfinished() -> list[JobRef]:
        return [job for job in jobs if job.job_id not in finals]

    try:
        await monitor.start()
        with anyio.fail_after(timeout):
            while len(finals) < distinct:
                received: list[tuple[str, Item]] = []
                # anyio's scope, not asyncio.wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that arrives as the inbox hands over.
                with anyio.move_on_after(ARTIFACT_MIN_INTERVAL if monitor.dirty else math.inf):
                    received = await inbox.take()
                if not received:
                    await monitor.flush()
                    continue
                for job_id, item in received:
                    if isinstance(item, BaseException):
                        raise item
                    if isinstance(item, Outage):
                        monitor.outage(job_id, item.error)
                    # A job seen final comes back through the inbox once more, with its record.
                    elif not (item.status.is_final and records is not None and records.start(job_id, item)):
                        await monitor.observe(item)
                        if item.status.is_final:
                            finals[job_id] = item
    except TimeoutError:
        pending = unfinished()
        cancelled = (
            await _cancel_owned(gateway, pending, owner, monitor, "timed out") if cancel_on_timeout else []
        )
        left = [job.job_id for job in pending if job.job_id not in cancelled]
        fates = [f"cancelled {id_list(cancelled)}"] if cancelled else []
        fates += [f"left running {id_list(left)}"] if left else []
        last = monitor.snapshots.get(pending[0].job_id)
        raise JobWaitTimeoutError(
            f"Gave up waiting after {timeout} s for {len(pending)} job(s); {'; '.join(fates)}",
            last or JobSnapshot(job_id=pending[0].job_id, status=JobStatus.QUEUED),
        ) from None
    except INTERRUPTS:
        await _cancel_owned(gateway, unfinished(), owner, monitor, "interrupted", end_sessions=True)
        raise
    finally:
        if records is not None:
            records.cancel()
        watcher.unwatch_many(gateway, handles)
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(FLUSH_TIME_CAP),
            contextlib.suppress(Exception),
        ):
            await monitor.flush(final=True)
    return [finals[job.job_id] for job in jobs]


class _RecordReads:
    """Each job seen final read once more, for when it started and finished and its QPU seconds.

    IBM's job listings and reads do not say when a job started: only the job's own record
    (``/metrics``) does, and the watcher reads that for a queued job's position only. So a job it
    saw go from QUEUED to DONE between two reads (or RUNNING, for that matter) has no start time
    until this read. It costs one request per job, so it is made only where a display shows the
    times: in a task run (its board and tables); a wait outside any run returns snapshots without
    ``running``. The reads run beside the wait, ``RECORD_READS_AT_ONCE`` at a time, and hand
    the completed snapshot back through the wait's inbox; a read that fails hands back the snapshot
    as it was (the timestamps are for people to read: they never fail a wait).
    """

    def __init__(self, gateway: IQPGateway, inbox: _Inbox, monitor: WaitMonitor) -> None:
        self._gateway = gateway
        self._inbox = inbox
        self._monitor = monitor
        self._limiter = anyio.CapacityLimiter(RECORD_READS_AT_ONCE)
        self._started: set[str] = set()
        self._reads: set[asyncio.Task[None]] = set()

    def start(self, job_id: str, snapshot: JobSnapshot) -> bool:
        """Start reading the record of ``job_id``, seen final; False if it has been read already."""
        if job_id in self._started:
            return False
        self._started.add(job_id)
        read = asyncio.get_running_loop().create_task(self._read(job_id, snapshot))
        self._reads.add(read)
        read.add_done_callback(self._reads.discard)
        return True

    def cancel(self) -> None:
        for read in list(self._reads):
            read.cancel()

    async def _read(self, job_id: str, snapshot: JobSnapshot) -> None:
        if snapshot.running is None or snapshot.quantum_seconds is None:
            try:
                metrics = await anyio.to_thread.run_sync(
                    self._gateway.metrics, job_id, limiter=self._limiter, abandon_on_cancel=True
                )
                snapshot = apply_metrics(snapshot, metrics)
            except Exception as exc:
                self._monitor.logger.warning("Could not read when job %s started: %s", job_id, exc)
        self._inbox.put(job_id, snapshot)


def _current_flow_run_id() -> str | None:
    context = TaskRunContext.get()
    flow_run_id = context.task_run.flow_run_id if context else None
    return str(flow_run_id) if flow_run_id else None


async def _cancel_owned(
    gateway: IQPGateway,
    jobs: Sequence[JobRef],
    owner: str | None,
    monitor: WaitMonitor,
    why: str,
    end_sessions: bool = False,
) -> list[str]:
    """Cancel the jobs this wait owns, even while being cancelled itself, for at most a minute.

    Interrupted (``end_sessions``), the run is ending: the sessions of those jobs end with them.
    Returns the ids of the jobs it asked IBM to cancel; the others are left running, and said so.
    """
    mine = [job for job in jobs if owned_by(job.tags, owner)]
    others = [job.job_id for job in jobs if not owned_by(job.tags, owner)]
    if others:
        monitor.logger.info(
            "Wait %s: leaving %s running (not submitted by this %s, or detached)",
            why,
            id_list(others),
            "flow run" if owner else "process",
        )
    # The last snapshot seen says whether a job already ended; a job not yet read goes as its reference.
    targets: list[JobRef | JobSnapshot] = [monitor.snapshots.get(job.job_id) or job for job in mine]
    if not targets:
        return []

    def log(message: str) -> None:
        monitor.logger.warning("Wait %s: %s", why, message)

    with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_TIME_CAP):
        await anyio.to_thread.run_sync(
            functools.partial(cancel_jobs, gateway, targets, Layer.SENSOR, log, end_sessions=end_sessions),
            abandon_on_cancel=True,
        )
    return [job.job_id for job in mine]


def _monitor_for(jobs: list[JobRef]) -> WaitMonitor:
    context = TaskRunContext.get()
    task_run = context.task_run if context else None
    return WaitMonitor(
        jobs,
        run_logger(__name__),
        str(task_run.flow_run_id) if task_run and task_run.flow_run_id else None,
        str(task_run.id) if task_run else None,
    )


async def resolve_jobs(jobs: Sequence[JobRef | str], credentials: CredentialsLike) -> list[JobRef]:
    """``JobRef``s for what a wait was given; a job id is checked first, then read once for its tags.

    The reads run side by side, at most ``RESOLVE_READS_AT_ONCE`` at a time: a wait handed many
    ids from elsewhere starts after a few round trips, not one per id.
    """
    ids = [job_id_of(job) for job in jobs if not isinstance(job, JobRef)]
    if not ids:
        return [job for job in jobs if isinstance(job, JobRef)]
    gateway = gateway_for(await aresolve_credentials(credentials))
    limiter = anyio.CapacityLimiter(RESOLVE_READS_AT_ONCE)
    refs: dict[str, JobRef] = {}

    async def resolve(job_id: str) -> None:
        snapshot = await anyio.to_thread.run_sync(gateway.read, job_id, limiter=limiter)
        refs[job_id] = JobRef.from_snapshot(snapshot, instance=gateway.credentials.instance)

    # gather, not a task group: the first error (an unknown id) is raised as itself.
    await asyncio.gather(*(resolve(job_id) for job_id in dict.fromkeys(ids)))
    return [job if isinstance(job, JobRef) else refs[job] for job in jobs]


async def wait_one(
    job: JobRef | str,
    *,
    credentials: CredentialsLike = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = True,
) -> JobSnapshot:
    """The body of ``wait_for_job``/``await_for_job`` (see them): the job's final snapshot."""
    (snapshot,) = await wait_many(
        [job],
        credentials=credentials,
        poll=poll,
        timeout=timeout,
        raise_on_failure=raise_on_failure,
        cancel_on_timeout=cancel_on_timeout,
    )
    return snapshot


async def wait_many(
    jobs: Sequence[JobRef | str],
    *,
    credentials: CredentialsLike = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = True,
) -> list[JobSnapshot]:
    """The body of ``wait_for_jobs``/``await_for_jobs``: the final snapshots, in the order of ``jobs``."""
    job_list = await resolve_jobs(list(jobs), credentials)
    snapshots = await await_jobs(
        job_list,
        credentials=credentials,
        poll=poll,
        timeout=timeout,
        cancel_on_timeout=cancel_on_timeout,
        monitor=_monitor_for(job_list),
    )
    if raise_on_failure:
        for snapshot in snapshots:
            snapshot.raise_for_outcome()
    return snapshots
