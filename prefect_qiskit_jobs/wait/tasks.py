"""The wait tasks: ``wait_for_job(s)`` block in sync code, ``await_for_job(s)`` are their awaitable twins.

Both run the same sensor (``sensor.wait_one``/``wait_many``): no thread sleeps per job, one
watcher per process reads every awaited job in batches, and an interrupted wait cancels the jobs
its own flow run submitted. In an async flow, await the twin so the flow's event loop keeps
running; the plain task works there too, but holds the loop while it waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.cache_policies import NO_CACHE

from prefect_qiskit_jobs.blocks import CredentialsLike
from prefect_qiskit_jobs.calls import qiskit_task, run_on_own_loop
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, PollPolicy
from prefect_qiskit_jobs.wait.sensor import wait_many, wait_one


def _one_run_name(parameters: dict[str, Any] | None = None) -> str:
    job = (parameters or {}).get("job")
    return f"wait-for-{getattr(job, 'job_id', job) or 'job'}"


def _many_run_name(parameters: dict[str, Any] | None = None) -> str:
    return f"wait-for-{len((parameters or {}).get('jobs') or [])}-jobs"


@qiskit_task(name="wait-for-job", task_run_name=_one_run_name, cache_policy=NO_CACHE)
def wait_for_job(
    job: JobRef | str,
    *,
    credentials: CredentialsLike = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = True,
) -> JobSnapshot:
    """Wait until IBM reports the job final and return its final snapshot; blocks the caller.

    Args:
        job: What a submit task returned, or a job id.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None (environment).
        poll: Backoff, jitter and error budget of the status reads.
        timeout: Seconds to wait at most; then ``JobWaitTimeoutError`` (the job is cancelled if
            this flow run submitted it, unless ``cancel_on_timeout=False``).
        raise_on_failure: Raise ``JobFailedError``/``JobCancelledError`` (with IBM's reason and
            reason code) when the job ends ERROR or CANCELLED; with False, return the snapshot.
        cancel_on_timeout: Cancel the job, if this run owns it, when ``timeout`` passes.

    Returns:
        The job's final snapshot (status, reason, timestamps, QPU seconds).

    Example:
        >>> @flow
        ... def bell():
        ...     job = submit_sampler_job([isa_circuit], backend="ibm_brisbane")
        ...     final = wait_for_job(job)
        ...     return fetch_job_result(job)  # doctest: +SKIP
    """
    return run_on_own_loop(
        wait_one(
            job,
            credentials=credentials,
            poll=poll,
            timeout=timeout,
            raise_on_failure=raise_on_failure,
            cancel_on_timeout=cancel_on_timeout,
        )
    )


@qiskit_task(name="wait-for-job", task_run_name=_one_run_name, cache_policy=NO_CACHE)
async def await_for_job(
    job: JobRef | str,
    *,
    credentials: CredentialsLike = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = True,
) -> JobSnapshot:
    """The awaitable twin of ``wait_for_job``: ``final = await await_for_job(job)``.

    Args:
        job: What a submit task returned, or a job id.
        credentials: A block, a saved block's name, or None (environment).
        poll: Backoff, jitter and error budget of the status reads.
        timeout: Seconds to wait at most; then ``JobWaitTimeoutError``.
        raise_on_failure: Raise when the job ends ERROR or CANCELLED.
        cancel_on_timeout: Cancel the job, if this run owns it, when ``timeout`` passes.

    Returns:
        The job's final snapshot.

    Example:
        >>> @flow
        ... async def bell():
        ...     job = await asubmit_sampler_job([isa_circuit], backend="ibm_brisbane")
        ...     final = await await_for_job(job)
        ...     return await afetch_job_result(job)  # doctest: +SKIP
    """
    return await wait_one(
        job,
        credentials=credentials,
        poll=poll,
        timeout=timeout,
        raise_on_failure=raise_on_failure,
        cancel_on_timeout=cancel_on_timeout,
    )


@qiskit_task(name="wait-for-jobs", task_run_name=_many_run_name, cache_policy=NO_CACHE)
def wait_for_jobs(
    jobs: Sequence[JobRef | str],
    *,
    credentials: CredentialsLike = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = True,
) -> list[JobSnapshot]:
    """Wait for many jobs together (their statuses are read in batches); blocks the caller.

    With ``raise_on_failure``, the first job found ERROR or CANCELLED (in the order of ``jobs``)
    raises once all have ended.

    Args:
        jobs: What submit tasks returned, or job ids.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None (environment).
        poll: Backoff, jitter and error budget of the status reads.
        timeout: Seconds to wait at most; then ``JobWaitTimeoutError``.
        raise_on_failure: Raise ``JobFailedError``/``JobCancelledError`` for a job that failed.
        cancel_on_timeout: Cancel the jobs this run owns when ``timeout`` passes.

    Returns:
        The final snapshots, in the order of ``jobs``.
    """
    return run_on_own_loop(
        wait_many(
            jobs,
            credentials=credentials,
            poll=poll,
            timeout=timeout,
            raise_on_failure=raise_on_failure,
            cancel_on_timeout=cancel_on_timeout,
        )
    )


@qiskit_task(name="wait-for-jobs", task_run_name=_many_run_name, cache_policy=NO_CACHE)
async def await_for_jobs(
    jobs: Sequence[JobRef | str],
    *,
    credentials: CredentialsLike = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
    raise_on_failure: bool = True,
    cancel_on_timeout: bool = True,
) -> list[JobSnapshot]:
    """The awaitable twin of ``wait_for_jobs``: ``finals = await await_for_jobs(jobs)``.

    Args:
        jobs: What submit tasks returned, or job ids.
        credentials: A block, a saved block's name, or None (environment).
        poll: Backoff, jitter and error budget of the status reads.
        timeout: Seconds to wait at most; then ``JobWaitTimeoutError``.
        raise_on_failure: Raise for a job that failed or was cancelled, once all have ended.
        cancel_on_timeout: Cancel the jobs this run owns when ``timeout`` passes.

    Returns:
        The final snapshots, in the order of ``jobs``.
    """
    return await wait_many(
        jobs,
        credentials=credentials,
        poll=poll,
        timeout=timeout,
        raise_on_failure=raise_on_failure,
        cancel_on_timeout=cancel_on_timeout,
    )
