"""Results in Prefect result storage, keyed by job id: fetched from IBM once, read anywhere after.

``fetch_job_result`` caches under ``qiskit-result-<job id>``: Prefect looks that key up in result
storage before running the task, so a second fetch of the same job, in this flow run or any later
one, in this process or another, reads storage and sends IBM nothing. Records are serialised with
qiskit-ibm-runtime's own ``RuntimeEncoder``/``RuntimeDecoder`` (ASCII JSON, so always valid UTF-8);
the serializer registers itself when this package is imported, which every reader does.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from prefect import task
from prefect.context import TaskRunContext
from prefect.filesystems import WritableFileSystem
from prefect.results import ResultStore, aget_default_result_storage, get_default_result_storage
from prefect.serializers import Serializer
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder

from .blocks import IBMQuantumCredentials
from .exceptions import IQPAuthenticationError, IQPError, IQPUnavailableError
from .models import JobRef, JobStatus, check_job_id
from .monitoring import summarize_result
from .runtime import gateway_for
from .sensor import raise_for_outcome
from .submit import is_transient, resolve_credentials

RESULT_KEY_PREFIX = "qiskit-result-"


class RuntimeJSONSerializer(Serializer):  # type: ignore[type-arg]
    """Prefect serializer for primitive results, on the client's own wire encoder."""

    type: Literal["qiskit-runtime-json"] = "qiskit-runtime-json"

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, cls=RuntimeEncoder).encode("utf-8")

    def loads(self, blob: bytes) -> Any:
        return json.loads(blob.decode("utf-8"), cls=RuntimeDecoder)


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


@task(
    name="fetch-job-result",
    task_run_name=_fetch_run_name,
    cache_key_fn=_cache_key,
    persist_result=True,
    result_serializer=RuntimeJSONSerializer(),
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=is_transient,
)
def fetch_job_result(job: JobRef | str, *, credentials: IBMQuantumCredentials | str | None = None) -> Any:
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
    job_id = _job_id(job)
    gateway = gateway_for(resolve_credentials(credentials))
    try:
        result = gateway.result(job_id)
    except (IQPAuthenticationError, IQPUnavailableError):
        raise
    except IQPError:
        # No result: the job failed, was cancelled or has not ended (or does not exist: read raises).
        snapshot = gateway.read(job_id)
        if snapshot.status is JobStatus.DONE:
            raise
        raise_for_outcome(snapshot)
        raise IQPError(
            f"Job {job_id} has no result yet: it is {snapshot.status.value}; wait for it first"
        ) from None
    summarize_result(job_id, job.primitive.value if isinstance(job, JobRef) else None, result)
    return result


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
