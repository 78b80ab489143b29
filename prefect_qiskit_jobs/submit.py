"""Submit tasks: check the pubs, POST one job, return a ``JobRef`` as soon as IBM has accepted it.

A submit never waits for the job. It tags the job with its flow run and task run (how the
cancellation layers find it later) and with an idempotency key, so that

- a retried task run adopts the job its earlier attempt created instead of submitting another;
- the duplicates the client can create itself (it re-sends a POST after a 5xx) are cancelled.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

from . import tags as job_tags
from .blocks import IBMQuantumCredentials
from .exceptions import InvalidJobInputError, IQPError, IQPUnavailableError
from .models import JobRef, JobSnapshot, Primitive
from .runtime import IQPGateway, gateway_for, isa_problem


def resolve_credentials(credentials: IBMQuantumCredentials | str | None) -> IBMQuantumCredentials:
    """A block, a saved block's name, or (None) the ``QISKIT_IBM_*`` environment."""
    if credentials is None:
        return IBMQuantumCredentials.from_environment()
    if isinstance(credentials, str):
        loaded: IBMQuantumCredentials = IBMQuantumCredentials.load(credentials)  # type: ignore[assignment]
        return loaded
    return credentials


def coerce_pubs(primitive: Primitive, pubs: Iterable[Any]) -> list[SamplerPub | EstimatorPub]:
    """Turn circuits and tuples into qiskit's pub containers, naming the pub that is wrong."""
    pub_list = list(pubs) if not hasattr(pubs, "num_qubits") else [pubs]
    if not pub_list:
        raise InvalidJobInputError("No pubs given: pass at least one circuit or pub tuple")
    out: list[SamplerPub | EstimatorPub] = []
    for index, pub in enumerate(pub_list):
        try:
            out.append(SamplerPub.coerce(pub) if primitive is Primitive.SAMPLER else EstimatorPub.coerce(pub))
        except (ValueError, TypeError) as exc:
            raise InvalidJobInputError(f"Pub {index} is not a valid {primitive.value} pub: {exc}") from None
    return out


def check_pubs(pubs: Sequence[SamplerPub | EstimatorPub], backend: Any) -> None:
    """Fail before anything is sent if a circuit is too wide, not ISA, unmeasured, or asks for no shots."""
    name = backend.name
    for index, pub in enumerate(pubs):
        circuit = pub.circuit
        if circuit.num_qubits > backend.num_qubits:
            raise InvalidJobInputError(
                f"Pub {index}: the circuit has {circuit.num_qubits} qubits "
                f"but {name} has {backend.num_qubits}"
            )
        problem = isa_problem(circuit, backend.target)
        if problem:
            raise InvalidJobInputError(
                f"Pub {index}: the circuit is not in {name}'s instruction set (not ISA): {problem} "
                "Transpile it first: "
                "generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)"
            )
        if isinstance(pub, SamplerPub):
            if not circuit.num_clbits:
                raise InvalidJobInputError(f"Pub {index}: the circuit measures nothing; add measure_all()")
            if pub.shots is not None and pub.shots <= 0:
                raise InvalidJobInputError(f"Pub {index}: shots must be positive, not {pub.shots}")
        if isinstance(pub, EstimatorPub) and pub.precision is not None and pub.precision <= 0:
            raise InvalidJobInputError(f"Pub {index}: precision must be positive, not {pub.precision}")


def submit_job(
    primitive: Primitive,
    pubs: Iterable[Any],
    *,
    backend: str,
    credentials: IBMQuantumCredentials | str | None = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
) -> JobRef:
    """Check, tag and submit one job; adopt the job of an earlier attempt of the same task run."""
    gateway = gateway_for(resolve_credentials(credentials))
    coerced = coerce_pubs(primitive, pubs)
    _check_options(primitive, options or {})
    target_backend = gateway.backend(backend)
    check_pubs(coerced, target_backend)

    context = TaskRunContext.get()
    task_run = context.task_run if context else None
    submit_key = str(task_run.id) if task_run else uuid.uuid4().hex
    all_tags = job_tags.job_tags(
        flow_run_id=task_run.flow_run_id if task_run else None,
        task_run_id=task_run.id if task_run else None,
        submit_key=submit_key,
        detached=detached,
        user_tags=tuple(tags or ()),
    )
    key_tag = job_tags.submit_key_tag(submit_key)
    if task_run is not None and task_run.run_count > 1:
        adopted = _adopt(gateway, key_tag, primitive, backend)
        if adopted is not None:
            _log(f"Adopted job {adopted.job_id} submitted by an earlier attempt of this task run")
            return adopted
    try:
        job = gateway.submit(primitive, coerced, backend, options or {}, all_tags)
    except IQPUnavailableError:
        # The POST may have created the job (or several) before the error: adopt rather than leak.
        adopted = _adopt(gateway, key_tag, primitive, backend)
        if adopted is None:
            raise
        _log(f"Submit failed after IBM created job {adopted.job_id}; adopted it")
        return adopted
    _cancel_duplicates(gateway, key_tag, keep=job.job_id)
    _log(f"Submitted {primitive.value} job {job.job_id} to {backend} ({len(coerced)} pubs)")
    return job


def _check_options(primitive: Primitive, options: dict[str, Any]) -> None:
    if not isinstance(options, dict):
        raise InvalidJobInputError(
            "options must be a dict of primitive options, e.g. {'default_shots': 1000}"
        )
    shots = options.get("default_shots")
    if primitive is Primitive.SAMPLER and shots is not None and (not isinstance(shots, int) or shots <= 0):
        raise InvalidJobInputError(f"default_shots must be a positive integer, not {shots!r}")
    precision = options.get("default_precision")
    if primitive is Primitive.ESTIMATOR and precision is not None and not precision > 0:
        raise InvalidJobInputError(f"default_precision must be positive, not {precision!r}")


def _adopt(gateway: IQPGateway, key_tag: str, primitive: Primitive, backend: str) -> JobRef | None:
    """The oldest job carrying ``key_tag``; any younger ones are duplicates and get cancelled."""
    found = sorted(gateway.list_jobs(tags=[key_tag]), key=lambda s: (s.created is None, s.created))
    if not found:
        return None
    keep = found[0]
    _cancel_duplicates(gateway, key_tag, keep=keep.job_id, known=found)
    return _ref_from_snapshot(keep, primitive, backend, gateway.credentials.instance)


def _cancel_duplicates(
    gateway: IQPGateway, key_tag: str, keep: str, known: list[JobSnapshot] | None = None
) -> None:
    try:
        found = known if known is not None else gateway.list_jobs(tags=[key_tag])
        for extra in found:
            if extra.job_id != keep and not extra.status.is_final:
                gateway.cancel(extra.job_id)
                _log(f"Cancelled duplicate job {extra.job_id} (the client re-sent the POST; kept {keep})")
    except IQPError as exc:
        _log(f"Could not check for duplicate jobs of {keep}: {exc}; the reaper will find any")


def _ref_from_snapshot(snapshot: JobSnapshot, primitive: Primitive, backend: str, instance: str) -> JobRef:
    return JobRef(
        job_id=snapshot.job_id,
        backend=snapshot.backend or backend,
        primitive=primitive,
        instance=instance,
        tags=snapshot.tags,
        created_at=snapshot.created,
    )


def _log(message: str) -> None:
    if TaskRunContext.get() is not None:
        get_run_logger().info(message)


def is_transient(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry only when IBM was unavailable, never for bad input, refused credentials or job outcomes."""
    try:
        state.result()
    except IQPUnavailableError:
        return True
    except Exception:
        return False
    return False


_SUBMIT_SETTINGS: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [5, 30],
    "retry_condition_fn": is_transient,
    "cache_policy": NO_CACHE,
}


@task(name="submit-sampler-job", task_run_name="submit-sampler-{backend}", **_SUBMIT_SETTINGS)
def submit_sampler_job(
    pubs: Iterable[Any],
    *,
    backend: str,
    credentials: IBMQuantumCredentials | str | None = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
) -> JobRef:
    """Submit Sampler pubs to ``backend`` and return the job's reference at once.

    Args:
        pubs: ISA circuits, or ``(circuit, parameter_values, shots)`` tuples.
        backend: Backend name, e.g. ``"ibm_brisbane"``.
        credentials: An ``IBMQuantumCredentials`` block, a saved block's name, or None for the
            ``QISKIT_IBM_*`` environment.
        options: ``SamplerV2`` options, e.g. ``{"default_shots": 1000}``.
        tags: Extra IBM job tags.
        detached: The job is meant for a later flow: no cancellation layer will ever cancel it.

    Example:
        >>> @flow
        ... def bell(credentials: IBMQuantumCredentials):
        ...     job = submit_sampler_job([isa_circuit], backend="ibm_brisbane", credentials=credentials)
        ...     return job.job_id  # doctest: +SKIP
    """
    return submit_job(
        Primitive.SAMPLER,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
    )


@task(name="submit-estimator-job", task_run_name="submit-estimator-{backend}", **_SUBMIT_SETTINGS)
def submit_estimator_job(
    pubs: Iterable[Any],
    *,
    backend: str,
    credentials: IBMQuantumCredentials | str | None = None,
    options: dict[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
) -> JobRef:
    """Submit Estimator pubs ``(circuit, observables[, parameter_values[, precision]])``; returns at once.

    Arguments are those of ``submit_sampler_job``; ``options`` are ``EstimatorV2`` options, e.g.
    ``{"default_precision": 0.01}``.
    """
    return submit_job(
        Primitive.ESTIMATOR,
        pubs,
        backend=backend,
        credentials=credentials,
        options=options,
        tags=tags,
        detached=detached,
    )
