"""Submit, wait and fetch in one call, for the simple case: ``run_sampler`` and ``run_estimator``.

Each makes the three task runs a longer flow would (so the UI and result storage look the same),
and returns the ``PrimitiveResult``. The ``a``-prefixed twins are for async flows and never block
the event loop; the plain ones block the caller, which suits scripts, notebooks and sync flows,
and cancel their job if interrupted (Ctrl-C, or the run cancelled) as the async ones do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .blocks import CredentialsLike
from .models import PollPolicy
from .results import afetch_job_result, fetch_job_result
from .sensor import wait_for_job
from .submit import asubmit_estimator_job, asubmit_sampler_job, submit_estimator_job, submit_sampler_job


async def arun_sampler(
    pubs: Iterable[Any] | Any,
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> Any:
    """Submit Sampler pubs, wait for the job and return its (stored) ``PrimitiveResult``."""
    job = await asubmit_sampler_job(
        pubs, backend=backend, credentials=credentials, options=options, tags=tags
    )
    await wait_for_job(job, credentials=credentials, poll=poll, timeout=timeout)
    return await afetch_job_result(job, credentials=credentials)


async def arun_estimator(
    pubs: Iterable[Any] | Any,
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> Any:
    """Submit Estimator pubs, wait for the job and return its (stored) ``PrimitiveResult``."""
    job = await asubmit_estimator_job(
        pubs, backend=backend, credentials=credentials, options=options, tags=tags
    )
    await wait_for_job(job, credentials=credentials, poll=poll, timeout=timeout)
    return await afetch_job_result(job, credentials=credentials)


def run_sampler(
    pubs: Iterable[Any] | Any,
    *,
    backend: str,
    credentials: CredentialsLike = None,
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
    job = submit_sampler_job(pubs, backend=backend, credentials=credentials, options=options, tags=tags)
    wait_for_job.sync_twin(job, credentials=credentials, poll=poll, timeout=timeout)
    return fetch_job_result(job, credentials=credentials)


def run_estimator(
    pubs: Iterable[Any] | Any,
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> Any:
    """``arun_estimator`` for sync callers."""
    job = submit_estimator_job(pubs, backend=backend, credentials=credentials, options=options, tags=tags)
    wait_for_job.sync_twin(job, credentials=credentials, poll=poll, timeout=timeout)
    return fetch_job_result(job, credentials=credentials)
