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
from typing import Any

import anyio
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.filesystems import WritableFileSystem
from prefect.results import ResultStore, aget_default_result_storage, get_default_result_storage

from .blocks import CredentialsLike, aresolve_credentials, resolve_credentials
from .calls import QiskitTask
from .exceptions import IQPAuthenticationError, IQPError, IQPUnavailableError, is_transient
from .models import JobRef, JobStatus, check_job_id
from .monitoring import summarize_result
from .runtime import IQPGateway, gateway_for
from .serializers import RuntimeJSONSerializer

RESULT_KEY_PREFIX = "qiskit-result-"


def result_key(job: JobRef | str) -> str:
    """The storage key of a job's result: the same in every process and flow run."""
    job_id = job.job_id if isinstance(job, JobRef) else check_job_id(job)
    return f"{RESULT_KEY_PREFIX}{job_id}"


def _cache_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    return result_key(parameters["job"])


def _job_id(job: JobRef | str) -> str:
    return job.job_id if isinstance(job, JobRef) else check_job_id(job)


def _fetch_run_name(parameters: dict[str, Any] | None = None) -> str:
    job = (parameters or {}).get("job")
    return f"fetch-result-{_job_id(job) if job is not None else 'job'}"


def _fetch(gateway: IQPGateway, job: JobRef | str) -> Any:
    """The job's result from IBM (blocking); for a job without one, the typed reason why."""
    job_id = _job_id(job)
    try:
        result = gateway.result(job_id, job.program_id if isinstance(job, JobRef) else None)
    except (IQPAuthenticationError, IQPUnavailableError):
        raise
    except IQPError:
        # No result: the job failed, was cancelled or has not ended (or does not exist: read raises).
        snapshot = gateway.read(job_id)
        if snapshot.status is JobStatus.DONE:
            raise
        snapshot.raise_for_outcome()
        raise IQPError(
            f"Job {job_id} has no result yet: it is {snapshot.status.value}; wait for it first"
        ) from None
    summarize_result(job_id, job.primitive.value if isinstance(job, JobRef) else None, result)
    return result


def _fetch_job_result(job: JobRef | str, *, credentials: CredentialsLike = None) -> Any:
    """The job's ``PrimitiveResult``, fetched from IBM once and persisted under a key made from its id.

    Args:
        job: A ``JobRef`` or a job id.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None (environment).

    Raises:
        JobFailedError, JobCancelledError: the job ended without a result (IBM's reason attached).
        IQPError: the job has not ended yet; wait for it first.

    Only ``IQPUnavailableError`` (IBM unreachable or rate limiting) is retried.

    Example:
        >>> counts = fetch_job_result(job)[0].data.meas.get_counts()  # doctest: +SKIP
    """
    return _fetch(gateway_for(resolve_credentials(credentials)), job)


async def _afetch_job_result(job: JobRef | str, *, credentials: CredentialsLike = None) -> Any:
    """``fetch_job_result`` for async flows, off the event loop: ``await afetch_job_result(job)``.

    It shares ``fetch_job_result``'s storage key, so either reads what the other stored.
    """
    gateway = gateway_for(await aresolve_credentials(credentials))
    return await anyio.to_thread.run_sync(_fetch, gateway, job)


_FETCH_SETTINGS: dict[str, Any] = {
    "name": "fetch-job-result",
    "task_run_name": _fetch_run_name,
    "cache_key_fn": _cache_key,
    "persist_result": True,
    "result_serializer": RuntimeJSONSerializer(),
    "retries": 2,
    "retry_delay_seconds": [5, 30],
    "retry_condition_fn": is_transient,
}
fetch_job_result: QiskitTask[..., Any] = QiskitTask(_fetch_job_result, **_FETCH_SETTINGS)
afetch_job_result: QiskitTask[..., Any] = QiskitTask(_afetch_job_result, **_FETCH_SETTINGS)


def _fetch_job_results(jobs: Sequence[JobRef | str], *, credentials: CredentialsLike = None) -> list[Any]:
    """The results of many jobs, in order: one ``fetch_job_result`` task run (and stored result) each.

    Example:
        >>> results = fetch_job_results(jobs, credentials="ibm-quantum")  # doctest: +SKIP
    """
    return [fetch_job_result(job, credentials=credentials) for job in jobs]


async def _afetch_job_results(
    jobs: Sequence[JobRef | str], *, credentials: CredentialsLike = None
) -> list[Any]:
    """``fetch_job_results`` for async flows: the fetches run side by side, off the event loop."""
    return list(await asyncio.gather(*(afetch_job_result(job, credentials=credentials) for job in jobs)))


fetch_job_results: QiskitTask[..., Any] = QiskitTask(
    _fetch_job_results, name="fetch-job-results", cache_policy=NO_CACHE
)
afetch_job_results: QiskitTask[..., Any] = QiskitTask(
    _afetch_job_results, name="fetch-job-results", cache_policy=NO_CACHE
)


def read_job_result(job: JobRef | str, result_storage: WritableFileSystem | None = None) -> Any:
    """Read a stored result by job id, without asking IBM; ``KeyError`` if it was never fetched."""
    storage = result_storage or get_default_result_storage()
    store = ResultStore(result_storage=storage, serializer=RuntimeJSONSerializer())
    key = result_key(job)
    if not store.exists(key):
        raise KeyError(f"No stored result for job {_job_id(job)} in {storage}")
    return store.read(key).result


async def aread_job_result(job: JobRef | str, result_storage: WritableFileSystem | None = None) -> Any:
    """``read_job_result`` for async code."""
    storage = result_storage or await aget_default_result_storage()
    store = ResultStore(result_storage=storage, serializer=RuntimeJSONSerializer())
    key = result_key(job)
    if not await store.aexists(key):
        raise KeyError(f"No stored result for job {_job_id(job)} in {storage}")
    return (await store.aread(key)).result
