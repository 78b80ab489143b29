"""Submit, wait and fetch in one call, for the simple case: ``run_sampler`` and ``run_estimator``.

Each makes the three task runs a longer flow would (so the UI and result storage look the same),
and returns the ``PrimitiveResult``. The ``a``-prefixed twins are for async flows; the plain ones
block the caller, which suits scripts, notebooks and sync flows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prefect.utilities.asyncutils import run_coro_as_sync

from .blocks import IBMQuantumCredentials
from .models import JobRef, PollPolicy
from .results import fetch_job_result
from .sensor import wait_for_job
from .submit import submit_estimator_job, submit_sampler_job


async def _run(
    job: JobRef,
    credentials: IBMQuantumCredentials | str | None,
    poll: PollPolicy | None,
    timeout: float | None,
) -> Any:
    await wait_for_job(job, credentials=credentials, poll=poll, timeout=timeout)
    return fetch_job_result(job, credentials=credentials)


async def arun_sampler(
    pubs: Iterable[Any],
    *,
    backend: str,
    credentials: IBMQuantumCredentials | str | None = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> Any:
    """Submit Sampler pubs, wait for the job and return its (stored) ``PrimitiveResult``."""
    job = submit_sampler_job(pubs, backend=backend, credentials=credentials, options=options, tags=tags)
    return await _run(job, credentials, poll, timeout)


async def arun_estimator(
    pubs: Iterable[Any],
    *,
    backend: str,
    credentials: IBMQuantumCredentials | str | None = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> Any:
    """Submit Estimator pubs, wait for the job and return its (stored) ``PrimitiveResult``."""
    job = submit_estimator_job(pubs, backend=backend, credentials=credentials, options=options, tags=tags)
    return await _run(job, credentials, poll, timeout)


def run_sampler(
    pubs: Iterable[Any],
    *,
    backend: str,
    credentials: IBMQuantumCredentials | str | None = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> Any:
    """``arun_sampler`` for sync callers.

    Example:
        >>> result = run_sampler([isa_bell], backend="ibm_brisbane")  # doctest: +SKIP
        >>> result[0].data.meas.get_counts()  # doctest: +SKIP
    """
    coro = arun_sampler(
        pubs, backend=backend, credentials=credentials, options=options, tags=tags, poll=poll, timeout=timeout
    )
    return run_coro_as_sync(coro)


def run_estimator(
    pubs: Iterable[Any],
    *,
    backend: str,
    credentials: IBMQuantumCredentials | str | None = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> Any:
    """``arun_estimator`` for sync callers."""
    coro = arun_estimator(
        pubs, backend=backend, credentials=credentials, options=options, tags=tags, poll=poll, timeout=timeout
    )
    return run_coro_as_sync(coro)
