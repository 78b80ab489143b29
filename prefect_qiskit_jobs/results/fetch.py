"""Results in Prefect result storage, keyed by job id: fetched from IBM once, read anywhere after.

``fetch_job_result`` caches under ``qiskit-result-<job id>``: Prefect looks that key up in result
storage before running the task, so a second fetch of the same job, in this flow run or any later
one, in this process or another, reads storage and sends IBM nothing. Records are serialised with
``RuntimeJSONSerializer`` (``serializers.py``), which registers itself when this package is
imported, as every reader does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import Any

import anyio
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.filesystems import WritableFileSystem
from prefect.results import (
    ResultStore,
    aget_default_result_storage,
    get_default_result_storage,
    get_result_store,
)
from qiskit.primitives import PrimitiveResult

from prefect_qiskit_jobs.blocks import CredentialsLike, aresolve_credentials, resolve_credentials
from prefect_qiskit_jobs.calls import qiskit_task
from prefect_qiskit_jobs.errors import (
    RETRY_THROUGH_OUTAGES,
    IQPAuthenticationError,
    IQPError,
    IQPUnavailableError,
    JobNotFoundError,
    JobResultExpired,
    ResultNotStoredError,
)
from prefect_qiskit_jobs.ibm.gateway import IQPGateway, gateway_for
from prefect_qiskit_jobs.models import JobRef, JobStatus, job_id_of
from prefect_qiskit_jobs.results.serializer import RuntimeJSONSerializer
from prefect_qiskit_jobs.results.summaries import asummarize_result, summarize_result

RESULT_KEY_PREFIX = "qiskit-result-"


def result_key(job: JobRef | str) -> str:
    """The storage key of a job's result: the same in every process and flow run."""
    return f"{RESULT_KEY_PREFIX}{job_id_of(job)}"


def _cache_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return result_key(parameters["job"])


def _fetch_run_name(parameters: dict[str, Any] | None = None) -> str:
    job = (parameters or {}).get("job")
    return f"fetch-result-{getattr(job, 'job_id', job) or 'job'}"


def _fetch(gateway: IQPGateway, job: JobRef | str) -> PrimitiveResult[Any]:
    """The job's result from IBM (blocking); for a job without one, the typed reason why."""
    job_id = job_id_of(job)
    try:
        result = gateway.result(job_id, job.program_id if isinstance(job, JobRef) else None)
    except (IQPAuthenticationError, IQPUnavailableError, JobResultExpired):
        raise
    except IQPError as exc:
        # No result: the job failed, was cancelled or has not ended, or IBM has it no more.
        try:
            snapshot = gateway.read(job_id)
        except JobNotFoundError:
            raise JobResultExpired(job_id, _gone_why(job)) from None
        if snapshot.status is JobStatus.DONE:
            if isinstance(exc, JobNotFoundError):
                raise JobResultExpired(job_id, "IBM keeps the job but no longer its result") from None
            raise
        snapshot.raise_for_outcome()
        raise IQPError(
            f"Job {job_id} has no result yet: it is {snapshot.status.value}; wait for it first"
        ) from None
    return result


def _gone_why(job: JobRef | str) -> str:
    """Why IBM answers 404 for a job: deleted or past its retention (both answer alike)."""
    why = "IBM has no job by that id any more: it was deleted (DELETE /jobs/{id}), or its retention ended"
    # A bare id may also be one this instance never had: IBM answers that the same way.
    return why if isinstance(job, JobRef) else why + ", or the id is not of this instance"


_FETCH_SETTINGS: dict[str, Any] = {
    "name": "fetch-job-result",
    "task_run_name": _fetch_run_name,
    "cache_key_fn": _cache_key,
    "persist_result": True,
    "result_serializer": RuntimeJSONSerializer(),
    **RETRY_THROUGH_OUTAGES,
}


@qiskit_task(**_FETCH_SETTINGS)
def fetch_job_result(job: JobRef | str, *, credentials: CredentialsLike = None) -> PrimitiveResult[Any]:
    """The job's ``PrimitiveResult``, fetched from IBM once and persisted under a key made from its id.

    Only ``IQPUnavailableError`` (IBM unreachable or rate limiting) is retried.

    Args:
        job: A ``JobRef`` or a job id.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None (environment).

    Returns:
        The job's result, from result storage when an earlier fetch stored it.

    Raises:
        JobFailedError: The job ended ERROR (IBM's reason attached).
        JobCancelledError: The job was cancelled.
        IQPError: The job has not ended yet; wait for it first.
        JobResultExpired: The result is in neither Prefect's storage nor IBM's (a private job's
            result read once already, a job deleted on IBM or past IBM's retention).

    Example:
        >>> counts = fetch_job_result(job)[0].data.meas.get_counts()  # doctest: +SKIP
    """
    result = _fetch(gateway_for(resolve_credentials(credentials)), job)
    summarize_result(job, result)
    return result


@qiskit_task(**_FETCH_SETTINGS)
async def afetch_job_result(
    job: JobRef | str, *, credentials: CredentialsLike = None
) -> PrimitiveResult[Any]:
    """The awaitable twin of ``fetch_job_result``, off the event loop: ``await afetch_job_result(job)``.

    It shares ``fetch_job_result``'s storage key, so either reads what the other stored.

    Args:
        job: A ``JobRef`` or a job id.
        credentials: A block, a saved block's name, or None (environment).

    Returns:
        The job's result.
    """
    gateway = gateway_for(await aresolve_credentials(credentials))
    result = await anyio.to_thread.run_sync(_fetch, gateway, job)
    await asummarize_result(job, result)
    return result


def _fetch_stored(
    gateway: IQPGateway, store: ResultStore, job: JobRef | str
) -> tuple[PrimitiveResult[Any], bool]:
    """What ``fetch_job_result`` does for one job, inside a batch's task run: storage first, then
    IBM, and the result stored under the same key, in the same record, as that task stores it.
    With the result, whether it came from IBM (then it wants its summary)."""
    key = result_key(job)
    if store.exists(key):
        stored: PrimitiveResult[Any] = store.read(key).result
        return stored, False
    result = _fetch(gateway, job)
    store.write(result, key=key)
    return result, True


def _fetch_stored_summarized(
    gateway: IQPGateway, store: ResultStore, job: JobRef | str
) -> PrimitiveResult[Any]:
    """``_fetch_stored`` for a sync batch's worker thread, with the summary of a result from IBM."""
    result, from_ibm = _fetch_stored(gateway, store, job)
    if from_ibm:
        summarize_result(job, result)
    return result


def _batch_store() -> ResultStore:
    """The result store ``fetch_job_result`` would use in this run: its storage and serializer."""
    # _sync: Prefect would hand back a coroutine where the run context is an async one.
    store: ResultStore = get_result_store().update_for_task(fetch_job_result, _sync=True)  # type: ignore[call-arg, assignment]
    return store


# Results of a batch fetched from IBM side by side, at most this many at a time.
FETCHES_AT_ONCE = 8


@qiskit_task(name="fetch-job-results", cache_policy=NO_CACHE, **RETRY_THROUGH_OUTAGES)
def fetch_job_results(
    jobs: Sequence[JobRef | str], *, credentials: CredentialsLike = None
) -> list[PrimitiveResult[Any]]:
    """The results of many jobs, in order, in one task run; each stored as ``fetch_job_result`` stores it.

    Each job's result is read from result storage when an earlier fetch stored it, else fetched
    from IBM and stored under ``qiskit-result-<job id>``, with its summary artifact: what a
    ``fetch_job_result`` call per job gives, without a task run per job. A retry (IBM unreachable)
    reads the results stored before it from storage.

    Args:
        jobs: ``JobRef``s or job ids.
        credentials: A block, a saved block's name, or None (environment).

    Returns:
        The results, in the order of ``jobs``.

    Example:
        >>> results = fetch_job_results(jobs, credentials="ibm-quantum")  # doctest: +SKIP
    """
    gateway, store = gateway_for(resolve_credentials(credentials)), _batch_store()
    # Side by side on worker threads, in the task run's context: the summaries use its Prefect
    # client, the reads wait on IBM together, and the client's per-request stack walk sees a
    # short stack.
    with ThreadPoolExecutor(FETCHES_AT_ONCE, thread_name_prefix="qiskit-fetch") as pool:
        fetches = [
            pool.submit(copy_context().run, _fetch_stored_summarized, gateway, store, job) for job in jobs
        ]
        return [fetch.result() for fetch in fetches]


@qiskit_task(name="fetch-job-results", cache_policy=NO_CACHE, **RETRY_THROUGH_OUTAGES)
async def afetch_job_results(
    jobs: Sequence[JobRef | str], *, credentials: CredentialsLike = None
) -> list[PrimitiveResult[Any]]:
    """The awaitable twin of ``fetch_job_results``: the fetches run side by side, off the event loop.

    Args:
        jobs: ``JobRef``s or job ids.
        credentials: A block, a saved block's name, or None (environment).

    Returns:
        The results, in the order of ``jobs``.
    """
    gateway = gateway_for(await aresolve_credentials(credentials))
    store = await get_result_store().aupdate_for_task(afetch_job_result)
    limiter = anyio.CapacityLimiter(FETCHES_AT_ONCE)

    async def fetch(job: JobRef | str) -> PrimitiveResult[Any]:
        result, from_ibm = await anyio.to_thread.run_sync(_fetch_stored, gateway, store, job, limiter=limiter)
        if from_ibm:
            await asummarize_result(job, result)
        return result

    return list(await asyncio.gather(*(fetch(job) for job in jobs)))


def read_job_result(
    job: JobRef | str, result_storage: WritableFileSystem | None = None
) -> PrimitiveResult[Any]:
    """Read a stored result by job id, without asking IBM.

    Raises:
        ResultNotStoredError: No result of this job is in ``result_storage`` (it was never fetched,
            or it was deleted); ``fetch_job_result`` fetches and stores it.
    """
    storage = result_storage or get_default_result_storage()
    store = ResultStore(result_storage=storage, serializer=RuntimeJSONSerializer())
    key = result_key(job)
    if not store.exists(key):
        raise ResultNotStoredError(job_id_of(job), storage)
    return store.read(key).result


async def aread_job_result(
    job: JobRef | str, result_storage: WritableFileSystem | None = None
) -> PrimitiveResult[Any]:
    """The awaitable twin of ``read_job_result``."""
    storage = result_storage or await aget_default_result_storage()
    store = ResultStore(result_storage=storage, serializer=RuntimeJSONSerializer())
    key = result_key(job)
    if not await store.aexists(key):
        raise ResultNotStoredError(job_id_of(job), storage)
    return (await store.aread(key)).result
