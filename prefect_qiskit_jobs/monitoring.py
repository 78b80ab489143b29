"""What people see while jobs wait: run-log lines, artifacts kept current, and Prefect events.

- one log line per status change, never one per poll;
- per wait, a table artifact of its jobs (status, queue position, timestamps, QPU seconds) and a
  progress artifact, created once and then updated in place, at most every few seconds;
- per flow run, one table of every job this process awaited for it (the "job board");
- an event per status change, ``qiskit.job.<status>``, with the flow run and task run as related
  resources, for automations (alert on failure, run a deployment on completion).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any
from uuid import UUID

from prefect.artifacts import TableArtifact, acreate_progress_artifact, acreate_table_artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactUpdate
from prefect.events import emit_event

from .models import JobRef, JobSnapshot, JobStatus

logger = logging.getLogger(__name__)

ARTIFACT_MIN_INTERVAL = 2.0
EVENT_PREFIX = "qiskit.job."


def job_row(job: JobRef, snapshot: JobSnapshot | None) -> dict[str, Any]:
    """One job as a row of the UI tables."""

    def stamp(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""

    status = snapshot.status.value if snapshot else "SUBMITTED"
    return {
        "job id": job.job_id,
        "backend": job.backend,
        "primitive": job.primitive.value,
        "status": status,
        "queue position": (snapshot.position_in_queue or "") if snapshot else "",
        "created": stamp(job.created_at or (snapshot.created if snapshot else None)),
        "started": stamp(snapshot.running if snapshot else None),
        "finished": stamp(snapshot.finished if snapshot else None),
        "QPU seconds": snapshot.quantum_seconds if snapshot and snapshot.quantum_seconds is not None else "",
        "reason": (snapshot.reason or "") if snapshot else "",
        "tags": ", ".join(t for t in job.tags if not t.startswith("prefect-")),
    }


def artifact_key(prefix: str, identifier: object) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    text = "".join(c if c.isalnum() else "-" for c in str(identifier).lower())
    return f"{prefix}-{text}"[:120]


class TableDisplay:
    """A table artifact created once and updated in place, no more often than every few seconds.

    The waits of one flow run may sit on different threads and event loops (``.map()``), so one
    writer at a time is chosen with a non-blocking thread lock: a wait that finds a write under
    way leaves its rows for that writer, which writes the newest rows before it lets go.
    """

    def __init__(self, key: str, description: str) -> None:
        self.key = key
        self.description = description
        self._artifact_id: UUID | None = None
        self._last_write = 0.0
        self._writer = threading.Lock()
        self._newest: list[dict[str, Any]] | None = None

    def due(self) -> bool:
        return time.monotonic() - self._last_write >= ARTIFACT_MIN_INTERVAL

    async def write(self, rows: list[dict[str, Any]]) -> None:
        self._newest = rows
        if not self._writer.acquire(blocking=False):
            return
        try:
            while self._newest is not None:
                pending, self._newest = self._newest, None
                self._last_write = time.monotonic()
                await self._send(pending)
        finally:
            self._writer.release()

    async def _send(self, rows: list[dict[str, Any]]) -> None:
        try:
            if self._artifact_id is None:
                self._artifact_id = await acreate_table_artifact(
                    rows, key=self.key, description=self.description
                )
            else:
                data = await TableArtifact(table=rows).aformat()
                async with get_client() as client:
                    await client.update_artifact(self._artifact_id, ArtifactUpdate(data=data))
        except Exception as exc:  # the UI is a view: a failed write must never fail a wait
            logger.warning("could not write artifact %s: %s", self.key, exc)


class JobBoard:
    """Every job this process awaited for one flow run; shared by the waits of that run."""

    # A serve process or worker lives through many runs: keep the boards of the latest ones only.
    _boards: OrderedDict[str, JobBoard] = OrderedDict()
    _boards_lock = threading.Lock()
    KEEP = 64

    def __init__(self, flow_run_id: str) -> None:
        self.display = TableDisplay(
            artifact_key("qiskit-jobs", flow_run_id), "IBM Quantum jobs of this flow run, kept current"
        )
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, flow_run_id: str) -> JobBoard:
        with cls._boards_lock:
            board = cls._boards.get(flow_run_id)
            if board is None:
                board = cls._boards[flow_run_id] = JobBoard(flow_run_id)
                while len(cls._boards) > cls.KEEP:
                    cls._boards.popitem(last=False)
            cls._boards.move_to_end(flow_run_id)
            return board

    def update(self, job: JobRef, snapshot: JobSnapshot | None) -> None:
        with self._lock:
            self._rows[job.job_id] = job_row(job, snapshot)

    def rows(self) -> list[dict[str, Any]]:
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
            artifact_key("qiskit-wait", task_run_id or "local"), "Jobs this wait follows"
        )
        self.board = JobBoard.of(flow_run_id) if flow_run_id else None
        self._progress_id: UUID | None = None
        self._dirty = True
        for job in jobs:
            if self.board:
                self.board.update(job, None)

    @property
    def dirty(self) -> bool:
        return self._dirty

    async def start(self) -> None:
        await self.flush()
        if len(self.jobs) > 1 and self.task_run_id:
            try:
                self._progress_id = await acreate_progress_artifact(
                    0.0, key=artifact_key("qiskit-progress", self.task_run_id), description="Jobs finished"
                )
            except Exception as exc:
                logger.warning("could not create the progress artifact: %s", exc)

    async def observe(self, snapshot: JobSnapshot) -> None:
        """A job changed: log a status change, emit its event, and refresh the displays when due."""
        job = self.jobs[snapshot.job_id]
        previous = self.snapshots.get(snapshot.job_id)
        self.snapshots[snapshot.job_id] = snapshot
        if self.board:
            self.board.update(job, snapshot)
        self._dirty = True
        if previous is None or previous.status is not snapshot.status:
            self.logger.info("Job %s on %s is %s", job.job_id, job.backend, snapshot.describe())
            if self.task_run_id is not None:
                self._emit(job, snapshot, previous)
        if snapshot.status.is_final or self.table.due():
            await self.flush()

    async def flush(self) -> None:
        """Write the displays; outside a task run (scripts, benchmarks) there are none to write."""
        if not self._dirty or self.task_run_id is None:
            self._dirty = False
            return
        self._dirty = False
        rows = [job_row(job, self.snapshots[job_id]) for job_id, job in self.jobs.items()]
        await self.table.write(rows)
        if self.board:
            await self.board.display.write(self.board.rows())
        if self._progress_id is not None:
            done = sum(1 for s in self.snapshots.values() if s and s.status.is_final)
            try:
                async with get_client() as client:
                    await client.update_artifact(
                        self._progress_id, ArtifactUpdate(data=100.0 * done / len(self.jobs))
                    )
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
                    "reason": snapshot.reason,
                    "reason_code": snapshot.reason_code,
                    "position_in_queue": snapshot.position_in_queue,
                    "quantum_seconds": snapshot.quantum_seconds,
                },
            )
        except Exception as exc:
            logger.warning("could not emit the event of job %s: %s", job.job_id, exc)


def final_state_message(snapshot: JobSnapshot) -> str:
    """What a task's final state says about its job, e.g. 'Job d1... DONE in 12.3 s of QPU time'."""
    text = f"Job {snapshot.job_id} {snapshot.describe()}"
    if snapshot.status is JobStatus.DONE and snapshot.quantum_seconds is not None:
        text += f" ({snapshot.quantum_seconds:.1f} s of QPU time)"
    return text


# ----- result summaries ------------------------------------------------------------------------
TOP_OUTCOMES = 8
MAX_ESTIMATOR_ROWS = 64


def counts_markdown(job_id: str, result: Any) -> str:
    """A histogram of each pub's most frequent outcomes, per classical register."""
    lines = [f"### Sampler result of job `{job_id}`", ""]
    for index, pub in enumerate(result):
        for register, bits in pub.data.items():
            counts = bits.get_counts()
            shots = sum(counts.values()) or 1
            top = sorted(counts.items(), key=lambda kv: -kv[1])[:TOP_OUTCOMES]
            lines += [
                f"**Pub {index}, register `{register}`** ({shots} shots, {len(counts)} distinct outcomes)",
                "",
                "| outcome | count | share | |",
                "|---|---:|---:|---|",
            ]
            for outcome, count in top:
                bar = "█" * max(1, round(30 * count / shots))
                lines.append(f"| `{outcome}` | {count} | {count / shots:.1%} | {bar} |")
            lines.append("")
    return "\n".join(lines)


def expectation_rows(result: Any) -> list[dict[str, Any]]:
    """One row per expectation value: pub, index in the pub's shape, value and standard error."""
    import numpy as np

    rows: list[dict[str, Any]] = []
    for index, pub in enumerate(result):
        values = np.atleast_1d(np.asarray(pub.data.evs, dtype=float))
        errors = np.atleast_1d(np.asarray(pub.data.stds, dtype=float)) if "stds" in pub.data else None
        for position, value in np.ndenumerate(values):
            std = float(errors[position]) if errors is not None and errors.shape == values.shape else None
            rows.append(
                {
                    "pub": index,
                    "index": ",".join(map(str, position)),
                    "expectation value": round(float(value), 6),
                    "± standard error": round(std, 6) if std is not None else "",
                }
            )
            if len(rows) >= MAX_ESTIMATOR_ROWS:
                return rows
    return rows


def summarize_result(job_id: str, primitive: str | None, result: Any) -> None:
    """Leave a result summary people would rather look at than read, as an artifact of the task run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    key = artifact_key("qiskit-result", job_id)
    try:
        if primitive == "estimator" or (result and "evs" in result[0].data):
            create_table_artifact(
                expectation_rows(result), key=key, description=f"Expectation values of job {job_id}"
            )
        else:
            create_markdown_artifact(
                counts_markdown(job_id, result), key=key, description=f"Counts of job {job_id}"
            )
    except Exception as exc:  # a summary is a view: never fail the fetch over it
        logger.warning("could not summarise the result of job %s: %s", job_id, exc)
