"""The submit tasks: check the pubs, POST the job, return a ``JobRef`` as soon as IBM accepted it.

Eight tasks, written out so that editors, type checkers and ``help()`` see their real parameters:
``submit_{sampler,estimator}_job`` make one job, ``submit_{sampler,estimator}_jobs`` split many
pubs into jobs of at most ``max_pubs_per_job``; each has an ``a``-prefixed awaitable twin that
never blocks the event loop. What they share (checks, tags, idempotency, caps) is in ``call``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prefect.cache_policies import NO_CACHE
from qiskit.primitives.containers.estimator_pub import EstimatorPubLike
from qiskit.primitives.containers.sampler_pub import SamplerPubLike

from prefect_qiskit_jobs.blocks import CredentialsLike
from prefect_qiskit_jobs.calls import qiskit_task
from prefect_qiskit_jobs.errors import RETRY_THROUGH_OUTAGES
from prefect_qiskit_jobs.models import JobRef, Primitive, PrimitiveApi
from prefect_qiskit_jobs.submit.call import asubmit_jobs, submit_jobs

DEFAULT_MAX_PUBS_PER_JOB = 100

# A submit re-runs on a transient IBM failure; the idempotency key makes the retry adopt its job.
SUBMIT_TASK_SETTINGS: dict[str, Any] = {
    **RETRY_THROUGH_OUTAGES,
    "cache_policy": NO_CACHE,
}


@qiskit_task(name="submit-sampler-job", task_run_name="submit-sampler-{backend}", **SUBMIT_TASK_SETTINGS)
def submit_sampler_job(
    pubs: SamplerPubLike | Iterable[SamplerPubLike],
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    fresh: bool = False,
    idempotency_key: str | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> JobRef:
    """Submit Sampler pubs to ``backend`` as one job and return its reference at once.

    Args:
        pubs: ISA circuits, or ``(circuit, parameter_values, shots)`` tuples; one circuit or one
            tuple is one pub.
        backend: Backend name, e.g. ``"ibm_brisbane"``.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None for the
            ``QISKIT_IBM_*`` environment.
        options: ``SamplerV2`` options, e.g. ``{"default_shots": 1000}``.
        tags: Extra IBM job tags.
        detached: The job is meant for a later flow: no cancellation layer will ever cancel it.
        fresh: Submit a new job even when this call already has one from an earlier attempt or
            retry of the flow run (a task retry still adopts the job of its own call).
        idempotency_key: Set by the call itself (the flow run, the task and the call's place in
            the run); give your own to make one job per key across flow runs.
        primitive_api: ``"v2"`` (default) submits through ``SamplerV2``; ``"executor"`` through the
            executor-based ``executor_sampler.Sampler`` (qiskit-ibm-runtime 0.50+). Either way the
            stored result is a ``PrimitiveResult``.

    Returns:
        The job's reference: its id, backend, primitive, tags and creation time.

    Example:
        >>> @flow
        ... def bell(credentials: str = "ibm-quantum"):
        ...     job = submit_sampler_job([isa_circuit], backend="ibm_brisbane", credentials=credentials)
        ...     return job.job_id  # doctest: +SKIP
    """
    (job,) = submit_jobs(
        Primitive.SAMPLER,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        primitive_api=primitive_api,
    )
    return job


@qiskit_task(name="submit-sampler-job", task_run_name="submit-sampler-{backend}", **SUBMIT_TASK_SETTINGS)
async def asubmit_sampler_job(
    pubs: SamplerPubLike | Iterable[SamplerPubLike],
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    fresh: bool = False,
    idempotency_key: str | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> JobRef:
    """The awaitable twin of ``submit_sampler_job``: ``job = await asubmit_sampler_job(...)``.

    Args:
        pubs: ISA circuits, or ``(circuit, parameter_values, shots)`` tuples.
        backend: Backend name.
        credentials: A block, a saved block's name, or None for the environment.
        options: ``SamplerV2`` options.
        tags: Extra IBM job tags.
        detached: No cancellation layer will ever cancel the job.
        fresh: Submit a new job even when this call already has one.
        idempotency_key: Set by the call itself; give your own for one job per key.
        primitive_api: ``"v2"`` or ``"executor"``.

    Returns:
        The job's reference.
    """
    (job,) = await asubmit_jobs(
        Primitive.SAMPLER,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        primitive_api=primitive_api,
    )
    return job


@qiskit_task(
    name="submit-sampler-jobs", task_run_name="submit-sampler-jobs-{backend}", **SUBMIT_TASK_SETTINGS
)
def submit_sampler_jobs(
    pubs: Iterable[SamplerPubLike],
    *,
    backend: str,
    max_pubs_per_job: int = DEFAULT_MAX_PUBS_PER_JOB,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    fresh: bool = False,
    idempotency_key: str | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> list[JobRef]:
    """Submit many Sampler pubs as jobs of at most ``max_pubs_per_job`` pubs each, in one task run.

    Every pub is checked before the first job is sent.

    Args:
        pubs: ISA circuits, or ``(circuit, parameter_values, shots)`` tuples, split in order.
        backend: Backend name, e.g. ``"ibm_brisbane"``.
        max_pubs_per_job: Pubs per job at most.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None for the
            ``QISKIT_IBM_*`` environment.
        options: ``SamplerV2`` options, e.g. ``{"default_shots": 1000}``.
        tags: Extra IBM job tags.
        detached: The jobs are meant for a later flow: no cancellation layer will cancel them.
        fresh: Submit new jobs even when this call already has some from an earlier attempt.
        idempotency_key: Set by the call itself; give your own for one set of jobs per key.
        primitive_api: ``"v2"`` (default) or ``"executor"``.

    Returns:
        The jobs' references, in the order of the pubs.
    """
    return submit_jobs(
        Primitive.SAMPLER,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        max_pubs_per_job=max_pubs_per_job,
        primitive_api=primitive_api,
    )


@qiskit_task(
    name="submit-sampler-jobs", task_run_name="submit-sampler-jobs-{backend}", **SUBMIT_TASK_SETTINGS
)
async def asubmit_sampler_jobs(
    pubs: Iterable[SamplerPubLike],
    *,
    backend: str,
    max_pubs_per_job: int = DEFAULT_MAX_PUBS_PER_JOB,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    fresh: bool = False,
    idempotency_key: str | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> list[JobRef]:
    """The awaitable twin of ``submit_sampler_jobs``.

    Args:
        pubs: ISA circuits or pub tuples, split in order.
        backend: Backend name.
        max_pubs_per_job: Pubs per job at most.
        credentials: A block, a saved block's name, or None for the environment.
        options: ``SamplerV2`` options.
        tags: Extra IBM job tags.
        detached: No cancellation layer will ever cancel the jobs.
        fresh: Submit new jobs even when this call already has some.
        idempotency_key: Set by the call itself; give your own for one set of jobs per key.
        primitive_api: ``"v2"`` or ``"executor"``.

    Returns:
        The jobs' references, in the order of the pubs.
    """
    return await asubmit_jobs(
        Primitive.SAMPLER,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        max_pubs_per_job=max_pubs_per_job,
        primitive_api=primitive_api,
    )


@qiskit_task(name="submit-estimator-job", task_run_name="submit-estimator-{backend}", **SUBMIT_TASK_SETTINGS)
def submit_estimator_job(
    pubs: EstimatorPubLike | Iterable[EstimatorPubLike],
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    fresh: bool = False,
    idempotency_key: str | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> JobRef:
    """Submit Estimator pubs to ``backend`` as one job and return its reference at once.

    Args:
        pubs: ``(circuit, observables[, parameter_values[, precision]])`` tuples; one tuple is one
            pub.
        backend: Backend name, e.g. ``"ibm_brisbane"``.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None for the
            ``QISKIT_IBM_*`` environment.
        options: ``EstimatorV2`` options, e.g. ``{"default_precision": 0.01}``.
        tags: Extra IBM job tags.
        detached: The job is meant for a later flow: no cancellation layer will ever cancel it.
        fresh: Submit a new job even when this call already has one from an earlier attempt or
            retry of the flow run (a task retry still adopts the job of its own call).
        idempotency_key: Set by the call itself (the flow run, the task and the call's place in
            the run); give your own to make one job per key across flow runs.
        primitive_api: ``"v2"`` (default) submits through ``EstimatorV2``; ``"executor"`` through
            the executor-based ``executor_estimator.Estimator`` (qiskit-ibm-runtime 0.50+).

    Returns:
        The job's reference: its id, backend, primitive, tags and creation time.
    """
    (job,) = submit_jobs(
        Primitive.ESTIMATOR,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        primitive_api=primitive_api,
    )
    return job


@qiskit_task(name="submit-estimator-job", task_run_name="submit-estimator-{backend}", **SUBMIT_TASK_SETTINGS)
async def asubmit_estimator_job(
    pubs: EstimatorPubLike | Iterable[EstimatorPubLike],
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    fresh: bool = False,
    idempotency_key: str | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> JobRef:
    """The awaitable twin of ``submit_estimator_job``: ``job = await asubmit_estimator_job(...)``.

    Args:
        pubs: ``(circuit, observables[, parameter_values[, precision]])`` tuples.
        backend: Backend name.
        credentials: A block, a saved block's name, or None for the environment.
        options: ``EstimatorV2`` options.
        tags: Extra IBM job tags.
        detached: No cancellation layer will ever cancel the job.
        fresh: Submit a new job even when this call already has one.
        idempotency_key: Set by the call itself; give your own for one job per key.
        primitive_api: ``"v2"`` or ``"executor"``.

    Returns:
        The job's reference.
    """
    (job,) = await asubmit_jobs(
        Primitive.ESTIMATOR,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        primitive_api=primitive_api,
    )
    return job


@qiskit_task(
    name="submit-estimator-jobs", task_run_name="submit-estimator-jobs-{backend}", **SUBMIT_TASK_SETTINGS
)
def submit_estimator_jobs(
    pubs: Iterable[EstimatorPubLike],
    *,
    backend: str,
    max_pubs_per_job: int = DEFAULT_MAX_PUBS_PER_JOB,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    fresh: bool = False,
    idempotency_key: str | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> list[JobRef]:
    """Submit many Estimator pubs as jobs of at most ``max_pubs_per_job`` pubs each, in one task run.

    Every pub is checked before the first job is sent.

    Args:
        pubs: ``(circuit, observables[, parameter_values[, precision]])`` tuples, split in order.
        backend: Backend name, e.g. ``"ibm_brisbane"``.
        max_pubs_per_job: Pubs per job at most.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None for the
            ``QISKIT_IBM_*`` environment.
        options: ``EstimatorV2`` options, e.g. ``{"default_precision": 0.01}``.
        tags: Extra IBM job tags.
        detached: The jobs are meant for a later flow: no cancellation layer will cancel them.
        fresh: Submit new jobs even when this call already has some from an earlier attempt.
        idempotency_key: Set by the call itself; give your own for one set of jobs per key.
        primitive_api: ``"v2"`` (default) or ``"executor"``.

    Returns:
        The jobs' references, in the order of the pubs.
    """
    return submit_jobs(
        Primitive.ESTIMATOR,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        max_pubs_per_job=max_pubs_per_job,
        primitive_api=primitive_api,
    )


@qiskit_task(
    name="submit-estimator-jobs", task_run_name="submit-estimator-jobs-{backend}", **SUBMIT_TASK_SETTINGS
)
async def asubmit_estimator_jobs(
    pubs: Iterable[EstimatorPubLike],
    *,
    backend: str,
    max_pubs_per_job: int = DEFAULT_MAX_PUBS_PER_JOB,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    fresh: bool = False,
    idempotency_key: str | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> list[JobRef]:
    """The awaitable twin of ``submit_estimator_jobs``.

    Args:
        pubs: Estimator pub tuples, split in order.
        backend: Backend name.
        max_pubs_per_job: Pubs per job at most.
        credentials: A block, a saved block's name, or None for the environment.
        options: ``EstimatorV2`` options.
        tags: Extra IBM job tags.
        detached: No cancellation layer will ever cancel the jobs.
        fresh: Submit new jobs even when this call already has some.
        idempotency_key: Set by the call itself; give your own for one set of jobs per key.
        primitive_api: ``"v2"`` or ``"executor"``.

    Returns:
        The jobs' references, in the order of the pubs.
    """
    return await asubmit_jobs(
        Primitive.ESTIMATOR,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        max_pubs_per_job=max_pubs_per_job,
        primitive_api=primitive_api,
    )
