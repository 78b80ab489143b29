"""Cleanup: old results out of Prefect's result storage, old jobs off IBM, and nothing else.

IBM does not keep jobs for ever (a retention, a ``DELETE /jobs/{id}``), and Prefect's result
storage keeps every stored result until someone deletes it. Cleanup picks the package's jobs
(tagged ``prefect-qiskit-jobs``) that ended before a cutoff and deletes their stored results
(``results``) and/or the jobs on IBM (``ibm``). It never touches a job that has not ended, nor one
whose flow run is not over: a run still waiting on its job (Running, Paused for a deferred wait,
Scheduled for a retry) would otherwise find its result gone. A run this Prefect API does not
know may be another server's: its jobs are left alone too.

Planning (``plan_cleanup``: listing, then the pure ``decide`` per job) is apart from deleting
(``apply_cleanup``), so a dry run is the plan alone. Deleting is safe to repeat and to run from
two processes at once: a result or a job already gone is success, counted only by the process
whose delete removed it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from uuid import UUID

import anyio
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import TERMINAL_STATES, StateType
from prefect.filesystems import WritableFileSystem
from prefect.results import aget_default_result_storage
from pydantic import BaseModel, ConfigDict

from prefect_qiskit_jobs.blocks import CredentialsLike, aresolve_credentials
from prefect_qiskit_jobs.errors import InvalidJobInputError
from prefect_qiskit_jobs.ibm.gateway import gateway_for
from prefect_qiskit_jobs.ibm.tags import FLOW_RUN_PREFIX, PACKAGE_TAG, selection_tags, value_of
from prefect_qiskit_jobs.models import JobSnapshot, JobStatus, span_of
from prefect_qiskit_jobs.results.fetch import result_key
from prefect_qiskit_jobs.results.storage import delete_stored, stored_size

DEFAULT_OLDER_THAN = "30d"
RUN_READ_BATCH = 200


class CleanupItem(BaseModel):
    """One listed job: whether cleanup deletes it (else ``why`` not), and the bytes of its stored result."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    status: JobStatus
    ended: datetime | None
    flow_run_id: str | None
    delete: bool
    why: str
    stored_bytes: int | None = None


class CleanupPlan(BaseModel):
    """What a cleanup would delete: the jobs that ended before ``cutoff``, and the ones it spares."""

    model_config = ConfigDict(frozen=True)

    cutoff: datetime
    results: bool
    ibm: bool
    items: tuple[CleanupItem, ...]

    @property
    def doomed(self) -> list[CleanupItem]:
        return [item for item in self.items if item.delete]

    @property
    def skipped(self) -> list[CleanupItem]:
        return [item for item in self.items if not item.delete]


class CleanupDeletion(BaseModel):
    """What was deleted for one job (or would be, in a dry run); ``result_bytes`` None: no result."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    result_bytes: int | None
    ibm_job: bool


class CleanupReport(BaseModel):
    """What a cleanup did (or, with ``dry_run``, would do): counts, bytes, and each job's line."""

    model_config = ConfigDict(frozen=True)

    dry_run: bool
    results_deleted: int
    jobs_deleted: int
    bytes_freed: int
    deleted: tuple[CleanupDeletion, ...]
    skipped: tuple[CleanupItem, ...]

    def lines(self) -> list[str]:
        """One line per job: what went (or would), or why it stays."""
        verb = "would delete" if self.dry_run else "deleted"
        said = []
        for deletion in self.deleted:
            parts = []
            if deletion.result_bytes is not None:
                parts.append(f"stored result ({deletion.result_bytes} bytes)")
            if deletion.ibm_job:
                parts.append("IBM job")
            said.append(
                f"{deletion.job_id}  {verb}: {', '.join(parts)}"
                if parts
                else f"{deletion.job_id}  nothing to delete: already gone"
            )
        said += [f"{item.job_id}  skipped: {item.why}" for item in self.skipped]
        return said

    def summary(self) -> str:
        """``Deleted 2 stored result(s) (4096 bytes freed) and 2 IBM job(s); skipped 1``."""
        if self.dry_run:
            done = f"Would delete {self.results_deleted} stored result(s) ({self.bytes_freed} bytes)"
        else:
            done = f"Deleted {self.results_deleted} stored result(s) ({self.bytes_freed} bytes freed)"
        return f"{done} and {self.jobs_deleted} IBM job(s); skipped {len(self.skipped)}"


def cutoff_of(older_than: str | timedelta, now: datetime | None = None) -> datetime:
    """The moment before which a job must have ended to go: ``older_than`` (``30d``, ``12h``) back.

    Example:
        >>> cutoff_of("30d", datetime(2026, 12, 31, tzinfo=timezone.utc)).isoformat()
        '2026-12-01T00:00:00+00:00'
    """
    span = older_than if isinstance(older_than, timedelta) else span_of(older_than)
    if span is None:
        raise InvalidJobInputError(
            f"Older than {older_than!r}: that is not a span; e.g. 90s, 30m, 12h, 30d, 4w"
        )
    return (now or datetime.now(timezone.utc)) - span


def decide(job: JobSnapshot, run_state: StateType | None, cutoff: datetime) -> tuple[bool, str]:
    """Whether cleanup may delete ``job``, and why (or why not); no I/O.

    ``run_state`` is the state of the job's flow run (its ``prefect-flow-run:`` tag); None when the
    job has no flow run or this Prefect API does not know it.

    Example:
        >>> from prefect_qiskit_jobs.models import JobSnapshot, JobStatus
        >>> long_ago = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> job = JobSnapshot(job_id="d0000000000000000001", status=JobStatus.DONE, finished=long_ago)
        >>> decide(job, None, datetime(2026, 6, 1, tzinfo=timezone.utc))
        (True, 'DONE, ended 2026-01-01 00:00 UTC')
        >>> decide(job.model_copy(update={"status": JobStatus.RUNNING}), None, long_ago)
        (False, 'RUNNING, not final')
    """
    if not job.status.is_final:
        return False, f"{job.status.value}, not final"
    ended = job.finished or job.created
    if ended is None or ended >= cutoff:
        return False, f"{job.status.value}, ended after the cutoff"
    run_id = value_of(job.tags, FLOW_RUN_PREFIX)
    if run_id is not None:
        if run_state is None:
            return False, f"its flow run {run_id} is unknown to this Prefect API (another server's?)"
        if run_state not in TERMINAL_STATES:
            return False, f"its flow run {run_id} is {run_state.value}"
    return True, f"{job.status.value}, ended {ended.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"


async def _run_states(run_ids: Sequence[str]) -> dict[str, StateType | None]:
    """The state type of each flow run this Prefect API knows, read in batches."""
    ids = []
    for run_id in run_ids:
        try:
            ids.append(UUID(run_id))
        except ValueError:
            continue
    states: dict[str, StateType | None] = {}
    async with get_client() as client:
        for start in range(0, len(ids), RUN_READ_BATCH):
            batch = ids[start : start + RUN_READ_BATCH]
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=batch)), limit=len(batch)
            )
            states.update({str(run.id): run.state.type if run.state else None for run in runs})
    return states


async def plan_cleanup(
    *,
    older_than: str | timedelta = DEFAULT_OLDER_THAN,
    results: bool = False,
    ibm: bool = False,
    flow_run_id: UUID | str | None = None,
    deployment_id: UUID | str | None = None,
    credentials: CredentialsLike = None,
    result_storage: WritableFileSystem | None = None,
) -> CleanupPlan:
    """List the package's jobs created before the cutoff and decide, job by job, what goes.

    Args:
        older_than: How long ago a job must have ended: ``30d``, ``12h``, ``90m`` or a timedelta.
        results: Delete stored results from Prefect's result storage.
        ibm: Delete the jobs on IBM.
        flow_run_id: Only the jobs of this flow run.
        deployment_id: Only the jobs of this deployment's runs.
        credentials: A block, a saved block's name, or None (environment).
        result_storage: Where results are stored; None: Prefect's default result storage.

    Returns:
        The plan; ``apply_cleanup`` carries it out.
    """
    if not (results or ibm):
        raise InvalidJobInputError("Nothing to delete: give --results, --ibm or both")
    cutoff = cutoff_of(older_than)
    gateway = gateway_for(await aresolve_credentials(credentials))
    tags = [PACKAGE_TAG, *selection_tags(flow_run_id, deployment_id)]
    listing = functools.partial(gateway.list_jobs, tags=tags, created_before=cutoff)
    jobs = await anyio.to_thread.run_sync(listing)
    run_ids = sorted({run_id for job in jobs if (run_id := value_of(job.tags, FLOW_RUN_PREFIX))})
    states = await _run_states(run_ids)
    storage = (result_storage or await aget_default_result_storage()) if results else None
    items = []
    for job in sorted(jobs, key=lambda job: job.created or cutoff):
        delete, why = decide(job, states.get(value_of(job.tags, FLOW_RUN_PREFIX) or ""), cutoff)
        size = None
        if delete and storage is not None:
            size = await anyio.to_thread.run_sync(stored_size, storage, result_key(job.job_id))
        items.append(
            CleanupItem(
                job_id=job.job_id,
                status=job.status,
                ended=job.finished or job.created,
                flow_run_id=value_of(job.tags, FLOW_RUN_PREFIX),
                delete=delete,
                why=why,
                stored_bytes=size,
            )
        )
    return CleanupPlan(cutoff=cutoff, results=results, ibm=ibm, items=tuple(items))


def preview(plan: CleanupPlan) -> CleanupReport:
    """The report of a dry run: what ``apply_cleanup`` would delete now."""
    deleted = tuple(
        CleanupDeletion(job_id=item.job_id, result_bytes=item.stored_bytes, ibm_job=plan.ibm)
        for item in plan.doomed
    )
    return _report(True, deleted, plan)


async def apply_cleanup(
    plan: CleanupPlan,
    *,
    credentials: CredentialsLike = None,
    result_storage: WritableFileSystem | None = None,
) -> CleanupReport:
    """Delete what ``plan`` says: each job's stored result first, then the job on IBM.

    A result or job already gone (another cleanup, IBM's retention) is success and counts nothing.

    Args:
        plan: What ``plan_cleanup`` decided.
        credentials: A block, a saved block's name, or None (environment).
        result_storage: Where results are stored; None: Prefect's default result storage.

    Returns:
        What this call deleted.
    """
    gateway = gateway_for(await aresolve_credentials(credentials)) if plan.ibm else None
    storage = (result_storage or await aget_default_result_storage()) if plan.results else None
    deleted = []
    for item in plan.doomed:
        freed = None
        if storage is not None:
            freed = await anyio.to_thread.run_sync(delete_stored, storage, result_key(item.job_id))
        gone = gateway is not None and await anyio.to_thread.run_sync(gateway.delete, item.job_id)
        deleted.append(CleanupDeletion(job_id=item.job_id, result_bytes=freed, ibm_job=gone))
    return _report(False, tuple(deleted), plan)


def _report(dry_run: bool, deleted: tuple[CleanupDeletion, ...], plan: CleanupPlan) -> CleanupReport:
    return CleanupReport(
        dry_run=dry_run,
        results_deleted=sum(d.result_bytes is not None for d in deleted),
        jobs_deleted=sum(d.ibm_job for d in deleted),
        bytes_freed=sum(d.result_bytes or 0 for d in deleted),
        deleted=deleted,
        skipped=tuple(plan.skipped),
    )


async def run_cleanup(
    *,
    older_than: str | timedelta = DEFAULT_OLDER_THAN,
    results: bool = False,
    ibm: bool = False,
    flow_run_id: UUID | str | None = None,
    deployment_id: UUID | str | None = None,
    dry_run: bool = False,
    credentials: CredentialsLike = None,
    result_storage: WritableFileSystem | None = None,
) -> CleanupReport:
    """Plan, then (unless ``dry_run``) apply: what ``prefect-qiskit-jobs cleanup`` runs."""
    plan = await plan_cleanup(
        older_than=older_than,
        results=results,
        ibm=ibm,
        flow_run_id=flow_run_id,
        deployment_id=deployment_id,
        credentials=credentials,
        result_storage=result_storage,
    )
    if dry_run:
        return preview(plan)
    return await apply_cleanup(plan, credentials=credentials, result_storage=result_storage)


@flow(name="qiskit-job-cleanup", log_prints=False)
async def clean_up_jobs(
    older_than: str = DEFAULT_OLDER_THAN,
    results: bool = True,
    ibm: bool = False,
    flow_run_id: str | None = None,
    deployment_id: str | None = None,
    dry_run: bool = False,
    credentials: str | None = None,
) -> CleanupReport:
    """Delete the stored results (and, opted in, the IBM jobs) of jobs that ended long ago.

    Only the package's own final jobs that ended more than ``older_than`` ago go, and never one
    whose flow run is not over. Safe to run on a schedule, twice, or from two places at once: what
    another run deleted first counts nothing here. Deleting IBM jobs cannot be undone; it is off
    unless asked for.

    Args:
        older_than: How long ago a job must have ended: ``30d``, ``12h``, ``4w``.
        results: Delete their results from Prefect's result storage.
        ibm: Delete the jobs on IBM too (``DELETE /jobs/{id}``).
        flow_run_id: Only the jobs of this flow run.
        deployment_id: Only the jobs of this deployment's runs.
        dry_run: Report what would go; delete nothing.
        credentials: Name of a saved ``IBMQuantumCredentials`` block; None reads ``QISKIT_IBM_*``.

    Returns:
        What went (or would): counts, bytes freed, each job's line.

    Example:
        >>> report = clean_up_jobs(older_than="30d", dry_run=True)  # doctest: +SKIP
        >>> report.summary()  # doctest: +SKIP
        'Would delete 3 stored result(s) (41230 bytes) and 0 IBM job(s); skipped 1'
    """
    logger = get_run_logger()
    report = await run_cleanup(
        older_than=older_than,
        results=results,
        ibm=ibm,
        flow_run_id=flow_run_id,
        deployment_id=deployment_id,
        dry_run=dry_run,
        credentials=credentials,
    )
    for line in report.lines():
        logger.info(line)
    logger.info(report.summary())
    return report
