"""What people see while jobs wait: run-log lines, artifacts kept current, and Prefect events.

- one log line per status change, never one per poll;
- per wait, a detailed table artifact of its jobs (every column) and a progress artifact, created
  once and then updated in place, at most every few seconds;
- per flow run, one table of every job this process awaited for it (the "job board"), narrow
  enough to read without scrolling (``board_rows``, shorter timestamps), and for more than one job a progress
  artifact: how many are final of how many, a line per status, failed jobs' reasons, and the QPU
  budget, spent and remaining when a budget applies (``limits.budget``);
- an event per status change, ``qiskit.job.<status>``, with the flow run and task run as related
  resources, for automations (alert on failure, run a deployment on completion). A status IBM
  added since this package was written is ``qiskit.job.unknown``, with IBM's own string in the
  payload's ``unrecognised_status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import anyio
from prefect.artifacts import Artifact, ProgressArtifact, TableArtifact
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate
from prefect.context import AsyncClientContext, SyncClientContext
from prefect.events import emit_event
from prefect.utilities.context import get_task_and_flow_run_ids

from prefect_qiskit_jobs.limits import budget
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus

logger = logging.getLogger(__name__)

ARTIFACT_MIN_INTERVAL = 2.0
# A wait for more jobs than this logs a tally of their statuses (at most every
# ARTIFACT_MIN_INTERVAL) instead of a line per change: 10,000 lines help no one reading the run.
# Jobs that fail or are cancelled still get a line each.
LOG_EACH_JOB_UP_TO = 50
# A flush waits this long at most for the API (and a write under way), then lets the wait go on.
FLUSH_TIME_CAP = 30.0
EVENT_PREFIX = "qiskit.job."
UNREACHABLE = "IBM Quantum unreachable"
# An outage's warning quotes this much of the error (the client's carry the whole URL).
ERROR_SHOWN = 200


def stamp(value: datetime | None) -> str:
    """A timestamp as the detailed tables and log lines show it (IBM's, in UTC)."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def short_stamp(value: datetime | None) -> str:
    """A timestamp as the board shows it, without the year: ``Dec 06 04:20:07`` (UTC)."""
    return value.strftime("%b %d %H:%M:%S") if value else ""


def job_row(
    job: JobRef,
    snapshot: JobSnapshot | None,
    stamp: Callable[[datetime | None], str] = stamp,
    unreachable_since: datetime | None = None,
) -> dict[str, Any]:
    """One job as a row of the detailed table of a wait: every column, filled or not.

    QPU seconds are shown once the job is final: before, IBM reports its usage as pending. While
    IBM does not answer the reads of the job, its reason says since when.
    """
    reason = (snapshot.reason or "") if snapshot else ""
    if unreachable_since is not None and not reason:
        reason = f"{UNREACHABLE} since {stamp(unreachable_since)} UTC"
    status = snapshot.status.value if snapshot else "SUBMITTED"
    if snapshot and snapshot.unrecognised_status is not None:
        status += f" ({snapshot.unrecognised_status})"
    final = snapshot is not None and snapshot.status.is_final
    return {
        "status": status,
        "queue position": (snapshot.position_in_queue or "") if snapshot else "",
        "backend": job.backend,
        "job id": job.job_id,
        "started": stamp(snapshot.running if snapshot else None),
        "finished": stamp(snapshot.finished if snapshot else None),
        "QPU seconds": snapshot.quantum_seconds
        if snapshot and final and snapshot.quantum_seconds is not None
        else "",
        "reason": reason,
        "created": stamp(job.created_at or (snapshot.created if snapshot else None)),
        "primitive": job.primitive.value,
        "tags": ", ".join(t for t in job.tags if not t.startswith("prefect-")),
    }


# The run's board shows these columns, in this order, when they say something for some job: queue
# position while a job has one, reason once a job has one, primitive when the jobs differ in it.
# Tags and creation times are in the detailed table of each wait. So the board reads without
# scrolling in the UI's artifact page at a laptop's width (about 780 px beside its side panel).
BOARD_COLUMNS = (
    "status", "queue position", "backend", "job id", "started", "finished", "QPU seconds",
    "reason", "primitive",
)  # fmt: skip
ALWAYS_SHOWN = frozenset({"status", "backend", "job id", "started", "finished", "QPU seconds"})


def board_rows(rows: Rows) -> Rows:
    """The board's columns of ``rows`` (``job_row``s)."""

    def says_something(column: str) -> bool:
        values = {row.get(column, "") for row in rows} - {""}
        return column in ALWAYS_SHOWN or len(values) > (1 if column == "primitive" else 0)

    shown = [column for column in BOARD_COLUMNS if says_something(column)]
    return [{column: row.get(column, "") for column in shown} for row in rows]


FINAL_STATUSES = frozenset(status.value for status in JobStatus if status.is_final)
REASONS_PER_STATUS = 5


def run_progress(rows: Rows, budget: str | None = None) -> tuple[float, str]:
    """The share of ``rows`` (``job_row``s) final, in percent, and a summary of them: how many are
    final of how many, then a line per status, with the reasons of jobs that have one; last the
    run's QPU budget line, when a budget applies (``budget``)."""
    counts = Counter(row["status"] for row in rows)
    final = sum(n for status, n in counts.items() if status in FINAL_STATUSES)
    order = ["SUBMITTED", *(status.value for status in JobStatus)]
    lines = [f"**{final} of {len(rows)} jobs final**", ""]
    for status in sorted(counts, key=lambda s: (order.index(s) if s in order else len(order), s)):
        line = f"- {status}: {counts[status]}"
        explained = [row for row in rows if row["status"] == status and row.get("reason")]
        told = [f"`{row['job id']}` {row['reason']}" for row in explained[:REASONS_PER_STATUS]]
        more = len(explained) - len(told)
        if told:
            line += " — " + "; ".join(told) + (f"; and {more} more" if more else "")
        lines.append(line)
    if budget:
        lines += ["", budget]
    return (100.0 * final / len(rows) if rows else 0.0), "\n".join(lines)


def run_times(snapshot: JobSnapshot) -> str:
    """``started …, finished …, … QPU seconds``, as far as they are known (for log lines)."""
    parts = [f"started {stamp(snapshot.running)}"] if snapshot.running else []
    parts += [f"finished {stamp(snapshot.finished)}"] if snapshot.finished else []
    if snapshot.status is JobStatus.DONE and snapshot.quantum_seconds is not None:
        parts.append(f"{snapshot.quantum_seconds} QPU seconds")
    return ", ".join(parts)


def artifact_key(prefix: str, identifier: object) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    text = "".join(c if c.isalnum() else "-" for c in str(identifier).lower())
    return f"{prefix}-{text}"[:120]


def run_client() -> SyncPrefectClient | None:
    """The run's own sync client, when no async client of the running loop is at hand.

    A sync wait runs on an event loop of its own, where ``get_client()`` builds a new client per
    call: a TLS context and a CSRF token request each time, which took most of a 100-job wait's CPU.
    The run's sync client (its engine's) is reused instead, from a worker thread that a cancelled
    write abandons (a flush's time cap), so a hung API never holds a wait's cleanup.
    """
    loop = asyncio.get_running_loop()
    async_context = AsyncClientContext.get()
    client = async_context.client if async_context is not None else None
    if client is not None and getattr(client, "_loop", None) in (loop, None):
        return None  # get_client() hands back this loop's client: nothing to build
    sync_context = SyncClientContext.get()
    return sync_context.client if sync_context is not None else None


async def create_artifact(artifact: Artifact) -> UUID:
    """Create ``artifact`` for the current task run (and flow run), through a client already made."""
    client = run_client()
    if client is None:
        return (await artifact.acreate()).id
    task_run_id, flow_run_id = get_task_and_flow_run_ids()
    request = ArtifactCreate(
        type=artifact.type,
        key=artifact.key,
        description=artifact.description,
        task_run_id=task_run_id,
        flow_run_id=flow_run_id,
        data=await artifact.aformat(),
    )
    return (await anyio.to_thread.run_sync(client.create_artifact, request, abandon_on_cancel=True)).id


async def update_artifact(artifact_id: UUID, update: ArtifactUpdate) -> None:
    """Update an artifact in place, through a client already made (see ``run_client``)."""
    client = run_client()
    if client is None:
        async with get_client() as async_client:
            await async_client.update_artifact(artifact_id, update)
    else:
        await anyio.to_thread.run_sync(client.update_artifact, artifact_id, update, abandon_on_cancel=True)


Rows = list[dict[str, Any]]
SendRows = Callable[[Rows], Awaitable[None]]
"""Puts rows into one table artifact; raises when it could not (the display logs it and retries later)."""


def prefect_table(key: str, description: str) -> SendRows:
    """Send rows to the Prefect table artifact ``key``: created by the first send, updated in place after."""
    artifact_id: UUID | None = None

    async def send(rows: Rows) -> None:
        nonlocal artifact_id
        if artifact_id is None:
            artifact_id = await create_artifact(TableArtifact(table=rows, key=key, description=description))
        else:
            data = await TableArtifact(table=rows).aformat()
            await update_artifact(artifact_id, ArtifactUpdate(data=data))

    return send


def prefect_progress(key: str) -> Callable[[float, str], Awaitable[None]]:
    """Send a share (percent) and its description to the Prefect progress artifact ``key``."""
    artifact_id: UUID | None = None

    async def send(share: float, description: str) -> None:
        nonlocal artifact_id
        if artifact_id is None:
            artifact_id = await create_artifact(
                ProgressArtifact(progress=share, key=key, description=description)
            )
        else:
            await update_artifact(artifact_id, ArtifactUpdate(data=share, description=description))

    return send


def prefect_board(flow_run_id: str) -> SendRows:
    """Send a run's ``job_row``s as its board (``board_rows``) and, for more than one job, its
    progress with a line per status (``run_progress``): one write of each per change."""
    table = prefect_table(
        artifact_key("qiskit-jobs", flow_run_id), "IBM Quantum jobs of this flow run, kept current"
    )
    progress = prefect_progress(artifact_key("qiskit-run-progress", flow_run_id))

    async def send(rows: Rows) -> None:
        await table(board_rows(rows))
        reading = budget.reading_for(flow_run_id)
        if len(rows) > 1 or reading is not None:
            await progress(*run_progress(rows, reading.line() if reading is not None else None))

    return send


def _wake(idle: asyncio.Future[None]) -> None:
    if not idle.done():  # a flush that gave up (time cap, cancelled) no longer waits
        idle.set_result(None)


class TableDisplay:
    """A table artifact kept current that never loses its last rows.

    Each change bumps a generation (``changed()``); a write reads the rows from ``rows`` when it
    sends them, so it never sends rows older than the change that asked for it. The waits of one
    flow run share its board from different threads and event loops (``.map()``), so which of them
    writes is decided under a thread lock that is never held across an await; one write is in
    flight at a time.

    - ``refresh()`` is for intermediate updates: it writes when the last write is at least
      ``ARTIFACT_MIN_INTERVAL`` old and no write is under way; otherwise the change stays pending
      (``dirty``) for a later refresh or flush. Deferred, never dropped.
    - ``flush()`` returns once every change made before it was called has been sent: a write
      under way on any event loop is awaited, and re-sends when a flush asked for newer rows; if
      that write stops first (failed, cancelled), the flush writes itself. It gives up after
      ``FLUSH_TIME_CAP`` seconds, so a wait's cleanup never hangs on the UI.

    Example:
        >>> rows = [{"job id": "d1...", "status": "RUNNING"}]
        >>> display = TableDisplay("qiskit-wait-1", "Jobs this wait follows", lambda: rows)
        >>> rows[0]["status"] = "DONE"
        >>> display.changed()
        >>> await display.flush()  # doctest: +SKIP
    """

    def __init__(
        self,
        key: str,
        description: str,
        rows: Callable[[], Rows],
        *,
        send: SendRows | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.description = description
        self._rows = rows
        self._send = send or prefect_table(key, description)
        self._clock = clock
        # Guards the fields below, across threads; never held across an await.
        self._lock = threading.Lock()
        self._generation = 1  # the rows exist before their first write
        self._sent = 0  # generation of the newest rows sent
        self._wanted = 0  # newest generation a flush waits for
        self._writing = False
        self._last_write = float("-inf")
        self._idle: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def changed(self) -> None:
        """Note that the rows changed (from any thread); a later refresh or flush sends them."""
        with self._lock:
            self._generation += 1

    @property
    def dirty(self) -> bool:
        """Whether changes wait to be sent (or a write under way may not hold them yet)."""
        with self._lock:
            return self._sent < self._generation

    async def refresh(self) -> None:
        """Send the rows if the rate limit allows and no write is under way; else leave them pending."""
        with self._lock:
            due = self._clock() - self._last_write >= ARTIFACT_MIN_INTERVAL
            if self._writing or self._sent >= self._generation or not due:
                return
            self._writing = True
        await self._write()

    async def flush(self) -> None:
        """Return once every change made so far is sent (or after ``FLUSH_TIME_CAP`` seconds)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            wanted = self._generation
            self._wanted = max(self._wanted, wanted)
        with anyio.move_on_after(FLUSH_TIME_CAP) as cap:
            while True:
                with self._lock:
                    if self._sent >= wanted:
                        return
                    if not self._writing:
                        self._writing = True
                        break
                    idle = loop.create_future()
                    self._idle.append((loop, idle))
                await idle  # the writer wakes us when it lets go
            await self._write()
        if cap.cancelled_caught:
            logger.warning("gave up writing artifact %s after %s s", self.key, FLUSH_TIME_CAP)

    async def _write(self) -> None:
        """Send until no flush waits for newer rows; the caller has made this the writer."""
        try:
            while True:
                with self._lock:
                    generation = self._generation
                    self._last_write = self._clock()
                try:
                    await self._send(self._rows())
                except Exception as exc:  # the UI is a view: a failed write must never fail a wait
                    logger.warning("could not write artifact %s: %s", self.key, exc)
                    return
                with self._lock:
                    self._sent = max(self._sent, generation)
                    if self._sent >= self._wanted:
                        return
        finally:
            with self._lock:
                self._writing = False
                idle, self._idle = self._idle, []
            for loop, future in idle:
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits there
                    loop.call_soon_threadsafe(_wake, future)


class JobBoard:
    """Every job this process awaited for one flow run; shared by the waits of that run."""

    # A serve process or worker lives through many runs: keep the boards of the latest ones, and
    # any board a wait still holds (a second board for a run would start a new artifact version
    # without the first one's rows).
    _boards: OrderedDict[str, JobBoard] = OrderedDict()
    _held: weakref.WeakValueDictionary[str, JobBoard] = weakref.WeakValueDictionary()
    _boards_lock = threading.Lock()
    KEEP = 64

    def __init__(self, flow_run_id: str, *, send: SendRows | None = None) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.display = TableDisplay(
            artifact_key("qiskit-jobs", flow_run_id),
            "IBM Quantum jobs of this flow run, kept current",
            self.rows,
            send=send or prefect_board(flow_run_id),
        )

    @classmethod
    def of(cls, flow_run_id: str) -> JobBoard:
        with cls._boards_lock:
            board = cls._boards.get(flow_run_id) or cls._held.get(flow_run_id)
            if board is None:
                board = JobBoard(flow_run_id)
                cls._held[flow_run_id] = board
            cls._boards[flow_run_id] = board
            cls._boards.move_to_end(flow_run_id)
            while len(cls._boards) > cls.KEEP:
                cls._boards.popitem(last=False)
            return board

    def update(
        self, job: JobRef, snapshot: JobSnapshot | None, unreachable_since: datetime | None = None
    ) -> None:
        with self._lock:
            self._rows[job.job_id] = job_row(job, snapshot, short_stamp, unreachable_since)
        self.display.changed()  # after the row: a write that sees this generation sees the row

    def rows(self) -> list[dict[str, Any]]:
        """Every job's ``job_row``; the board shows the ``board_rows`` of them."""
        with self._lock:
            return list(self._rows.values())


class WaitMonitor:
    """Everything a wait shows: log lines, its own table and progress, the run's board, events."""

    def __init__(
        self, jobs: list[JobRef], run_logger: Any, flow_run_id: str | None, task_run_id: str | None
    ) -> None:
        self.jobs = {job.job_id: job for job in jobs}
        self.snapshots: dict[str, JobSnapshot | None] = dict.fromkeys(self.jobs)
        self.logger = run_logger
        self.flow_run_id = flow_run_id
        self.task_run_id = task_run_id
        self.table = TableDisplay(
            artifact_key("qiskit-wait", task_run_id or "local"), "Jobs this wait follows", self._rows
        )
        self.board = JobBoard.of(flow_run_id) if flow_run_id else None
        self._progress_id: UUID | None = None
        self._progress_sent: float | None = None
        self._progress_at = float("-inf")  # when the progress bar was last written (monotonic)
        self._tally_pending = False
        self._tally_logged: float | None = None
        # Jobs whose reads IBM does not answer, and since when (UTC).
        self.unreachable: dict[str, datetime] = {}
        for job in jobs:
            if self.board:
                self.board.update(job, None)

    @property
    def dirty(self) -> bool:
        """Whether a display (or the tally) holds changes not yet written; the sensor flushes after
        the interval."""
        if self._tally_pending:
            return True
        if self.task_run_id is None:
            return False
        return self.table.dirty or (self.board is not None and self.board.display.dirty)

    async def start(self) -> None:
        await self.flush()
        if len(self.jobs) > 1 and self.task_run_id:
            try:
                self._progress_id = await create_artifact(
                    ProgressArtifact(
                        progress=0.0,
                        key=artifact_key("qiskit-progress", self.task_run_id),
                        description="Jobs finished",
                    )
                )
                self._progress_sent = 0.0
            except Exception as exc:
                logger.warning("could not create the progress artifact: %s", exc)

    async def observe(self, snapshot: JobSnapshot) -> None:
        """A job changed: log a status change, emit its event, and refresh the displays.

        Every change, final ones too, is written when the rate limit allows (``ARTIFACT_MIN_INTERVAL``;
        the sensor flushes what is pending after that interval, and everything when the wait ends).
        Flushing each final status at once wrote the table, the board and both progress bars per job
        that ended: 400 writes of up to 100 rows each for a 100-job wait, which held its end by 10 s.
        """
        job = self.jobs[snapshot.job_id]
        previous = self.snapshots.get(snapshot.job_id)
        self.snapshots[snapshot.job_id] = snapshot
        self._reachable(snapshot.job_id)
        self.table.changed()
        if self.board:
            self.board.update(job, snapshot)
        if previous is None or previous.status is not snapshot.status:
            self._log_change(job, snapshot)
            if self.task_run_id is not None:
                self._emit(job, snapshot, previous)
        if self.task_run_id is not None:
            await self.table.refresh()
            if self.board:
                await self.board.display.refresh()
            if snapshot.status.is_final and time.monotonic() - self._progress_at >= ARTIFACT_MIN_INTERVAL:
                await self._write_progress()

    def outage(self, job_id: str, error: str | None) -> None:
        """IBM stopped answering the reads of ``job_id`` (``error``), or answers again (None).

        The first job to go unreachable logs a warning and the last to come back logs how long it
        lasted; meanwhile the job's rows say since when, written with the next refresh.
        """
        if error is None:
            self._reachable(job_id)
        elif job_id not in self.unreachable:
            now = datetime.now(timezone.utc)
            if not self.unreachable:
                self.logger.warning(
                    "%s since %s UTC (%s); the wait goes on, and fails only after the poll policy's "
                    "error_budget of failed reads in a row",
                    UNREACHABLE,
                    stamp(now),
                    error if len(error) <= ERROR_SHOWN else error[: ERROR_SHOWN - 1] + "…",
                )
            self.unreachable[job_id] = now
        else:
            return
        self.table.changed()
        if self.board:
            self.board.update(self.jobs[job_id], self.snapshots.get(job_id), self.unreachable.get(job_id))

    def _reachable(self, job_id: str) -> None:
        since = self.unreachable.pop(job_id, None)
        if since is not None and not self.unreachable:
            lasted = (datetime.now(timezone.utc) - since).total_seconds()
            self.logger.info("IBM Quantum answers again, after %.0f s", lasted)

    def _log_change(self, job: JobRef, snapshot: JobSnapshot) -> None:
        if len(self.jobs) <= LOG_EACH_JOB_UP_TO or snapshot.status in (JobStatus.ERROR, JobStatus.CANCELLED):
            times = run_times(snapshot) if snapshot.status.is_final else ""
            told = f"{snapshot.describe()} ({times})" if times else snapshot.describe()
            self.logger.info("Job %s on %s is %s", job.job_id, job.backend, told)
        if len(self.jobs) > LOG_EACH_JOB_UP_TO:
            self._tally_pending = True
            self._log_tally()

    def _log_tally(self, final: bool = False) -> None:
        """One line with how many jobs are in each status, once the last is old enough (or at the end)."""
        now = time.monotonic()
        recent = self._tally_logged is not None and now - self._tally_logged < ARTIFACT_MIN_INTERVAL
        if not self._tally_pending or (recent and not final):
            return
        counts = Counter(s.status for s in self.snapshots.values() if s is not None)
        unseen = len(self.jobs) - sum(counts.values())
        parts = [f"{n} {status.value}" for status, n in sorted(counts.items(), key=lambda i: -i[1])]
        parts += [f"{unseen} not yet read"] if unseen else []
        self.logger.info("%d jobs: %s", len(self.jobs), ", ".join(parts))
        self._tally_pending, self._tally_logged = False, now

    async def flush(self, final: bool = False) -> None:
        """Write every change so far, waiting for writes under way (``final``: the wait is over);
        outside a task run (scripts, benchmarks) there are no displays to write."""
        self._log_tally(final)
        if self.task_run_id is None:
            return
        await self.table.flush()
        if self.board:
            await self.board.display.flush()
        await self._write_progress()

    def _rows(self) -> Rows:
        return [
            job_row(job, self.snapshots[job_id], unreachable_since=self.unreachable.get(job_id))
            for job_id, job in self.jobs.items()
        ]

    async def _write_progress(self) -> None:
        if self._progress_id is None:
            return
        done = sum(1 for s in self.snapshots.values() if s and s.status.is_final)
        share = 100.0 * done / len(self.jobs)
        if share == self._progress_sent:
            return
        try:
            self._progress_at = time.monotonic()
            await update_artifact(self._progress_id, ArtifactUpdate(data=share))
            self._progress_sent = share
        except Exception as exc:
            logger.warning("could not update the progress artifact: %s", exc)

    def _emit(self, job: JobRef, snapshot: JobSnapshot, previous: JobSnapshot | None) -> None:
        related = []
        if self.flow_run_id:
            related.append(
                {
                    "prefect.resource.id": f"prefect.flow-run.{self.flow_run_id}",
                    "prefect.resource.role": "flow-run",
                }
            )
        if self.task_run_id:
            related.append(
                {
                    "prefect.resource.id": f"prefect.task-run.{self.task_run_id}",
                    "prefect.resource.role": "task-run",
                }
            )
        try:
            emit_event(
                event=f"{EVENT_PREFIX}{snapshot.status.value.lower()}",
                resource={
                    "prefect.resource.id": f"qiskit.job.{job.job_id}",
                    "prefect.resource.name": job.job_id,
                    "qiskit.backend": job.backend,
                },
                related=related,
                payload={
                    "job_id": job.job_id,
                    "backend": job.backend,
                    "primitive": job.primitive.value,
                    "status": snapshot.status.value,
                    "previous_status": previous.status.value if previous else None,
                    "unrecognised_status": snapshot.unrecognised_status,
                    "reason": snapshot.reason,
                    "reason_code": snapshot.reason_code,
                    "position_in_queue": snapshot.position_in_queue,
                    "quantum_seconds": snapshot.quantum_seconds,
                },
            )
        except Exception as exc:
            logger.warning("could not emit the event of job %s: %s", job.job_id, exc)
