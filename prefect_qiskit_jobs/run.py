"""Submit, wait and fetch in one call, for the simple case: ``run_sampler`` and ``run_estimator``.

Each makes the three task runs a longer flow would (so the UI and result storage look the same),
and returns the ``PrimitiveResult``. The plain ones block the caller, which suits scripts,
notebooks and sync flows, and cancel their job if interrupted (Ctrl-C, or the run cancelled); the
``a``-prefixed twins are for async flows and never block the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers.estimator_pub import EstimatorPubLike
from qiskit.primitives.containers.sampler_pub import SamplerPubLike

from prefect_qiskit_jobs.blocks import CredentialsLike
from prefect_qiskit_jobs.models import PollPolicy
from prefect_qiskit_jobs.results.fetch import afetch_job_result, fetch_job_result
from prefect_qiskit_jobs.submit.tasks import (
    asubmit_estimator_job,
    asubmit_sampler_job,
    submit_estimator_job,
    submit_sampler_job,
)
from prefect_qiskit_jobs.wait.tasks import await_for_job, wait_for_job


def run_sampler(
    pubs: SamplerPubLike | Iterable[SamplerPubLike],
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> PrimitiveResult[Any]:
    """Submit Sampler pubs, wait for the job and return its (stored) ``PrimitiveResult``.

    Args:
        pubs: ISA circuits or ``(circuit, parameter_values, shots)`` tuples.
        backend: Backend name.
        credentials: A block, a saved block's name, or None for the environment.
        options: ``SamplerV2`` options.
        tags: Extra IBM job tags.
        poll: Backoff, jitter and error budget of the status reads.
        timeout: Seconds to wait at most.

    Returns:
        The job's result.

    Example:
        >>> result = run_sampler([isa_bell], backend="ibm_brisbane")  # doctest: +SKIP
        >>> result[0].data.meas.get_counts()  # doctest: +SKIP
    """
    job = submit_sampler_job(pubs, backend=backend, credentials=credentials, options=options, tags=tags)
    wait_for_job(job, credentials=credentials, poll=poll, timeout=timeout)
    return fetch_job_result(job, credentials=credentials)


async def arun_sampler(
    pubs: SamplerPubLike | Iterable[SamplerPubLike],
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> PrimitiveResult[Any]:
    """The awaitable twin of ``run_sampler``.

    Args:
        pubs: ISA circuits or ``(circuit, parameter_values, shots)`` tuples.
        backend: Backend name.
        credentials: A block, a saved block's name, or None for the environment.
        options: ``SamplerV2`` options.
        tags: Extra IBM job tags.
        poll: Backoff, jitter and error budget of the status reads.
        timeout: Seconds to wait at most.

    Returns:
        The job's result.
    """
    job = await asubmit_sampler_job(
        pubs, backend=backend, credentials=credentials, options=options, tags=tags
    )
    await await_for_job(job, credentials=credentials, poll=poll, timeout=timeout)
    return await afetch_job_result(job, credentials=credentials)


def run_estimator(
    pubs: EstimatorPubLike | Iterable[EstimatorPubLike],
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> PrimitiveResult[Any]:
    """Submit Estimator pubs, wait for the job and return its (stored) ``PrimitiveResult``.

    Args:
        pubs: ``(circuit, observables[, parameter_values[, precision]])`` tuples.
        backend: Backend name.
        credentials: A block, a saved block's name, or None for the environment.
        options: ``EstimatorV2`` options.
        tags: Extra IBM job tags.
        poll: Backoff, jitter and error budget of the status reads.
        timeout: Seconds to wait at most.

    Returns:
        The job's result.
    """
    job = submit_estimator_job(pubs, backend=backend, credentials=credentials, options=options, tags=tags)
    wait_for_job(job, credentials=credentials, poll=poll, timeout=timeout)
    return fetch_job_result(job, credentials=credentials)


async def arun_estimator(
    pubs: EstimatorPubLike | Iterable[EstimatorPubLike],
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    poll: PollPolicy | None = None,
    timeout: float | None = None,
) -> PrimitiveResult[Any]:
    """The awaitable twin of ``run_estimator``.

    Args:
        pubs: ``(circuit, observables[, parameter_values[, precision]])`` tuples.
        backend: Backend name.
        credentials: A block, a saved block's name, or None for the environment.
        options: ``EstimatorV2`` options.
        tags: Extra IBM job tags.
        poll: Backoff, jitter and error budget of the status reads.
        timeout: Seconds to wait at most.

    Returns:
        The job's result.
    """
    job = await asubmit_estimator_job(
        pubs, backend=backend, credentials=credentials, options=options, tags=tags
    )
    await await_for_job(job, credentials=credentials, poll=poll, timeout=timeout)
    return await afetch_job_result(job, credentials=credentials)
