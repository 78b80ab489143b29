"""Submit tasks: check the pubs, POST the job, return a ``JobRef`` as soon as IBM has accepted it.

A submit never waits for the job. It tags the job with its flow run and task run (how the
cancellation layers find it later) and with an idempotency key (see ``idempotency``), so that

- a task retry, a flow-run retry and a re-run of the same flow run adopt the job the earlier
  attempt created instead of submitting another (a first run, which can have no earlier job, does
  not look: see ``idempotency.FirstRuns``). An adopted job that ended ERROR or CANCELLED is
  not adopted: the retry submits a new job, which is what a retry is for. ``fresh=True`` asks for
  a new job on every execution of the call;
- the duplicates the client can create itself (it re-sends a POST after a 5xx) are cancelled.

Inside an ``ibm_session``/``ibm_batch`` block the jobs join its session (see ``sessions``).
Every check runs before the first request: pubs, options, the key, the session, then the backend
and ISA.
``submit_*_job`` make one job; ``submit_*_jobs`` split many pubs into jobs of at most
``max_pubs_per_job``. The ``a``-prefixed twins are for async flows and never block the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np
from prefect.context import FlowRunContext, TaskRunContext
from qiskit import QuantumCircuit
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub

from prefect_qiskit_jobs.blocks import CredentialsLike, aresolve_credentials, resolve_credentials
from prefect_qiskit_jobs.errors import InvalidJobInputError, IQPError, IQPUnavailableError
from prefect_qiskit_jobs.ibm import attempts
from prefect_qiskit_jobs.ibm import tags as job_tags
from prefect_qiskit_jobs.ibm.gateway import IQPGateway, gateway_for
from prefect_qiskit_jobs.ibm.mapping import isa_problem, primitive_class
from prefect_qiskit_jobs.limits import budget, inflight
from prefect_qiskit_jobs.limits import rate as throttle
from prefect_qiskit_jobs.logs import run_logger
from prefect_qiskit_jobs.models import JobRef, JobSnapshot, JobStatus, Primitive, PrimitiveApi
from prefect_qiskit_jobs.submit import sessions
from prefect_qiskit_jobs.submit.idempotency import check_idempotency_key, claim_first_run, job_key

Log = Callable[[str], None]
DEFAULT_MAX_PUBS_PER_JOB = 100
# The usual cause of a width mismatch: the observable was written for the circuit before transpiling.
WIDTH_HINT = " Lay the observable out as the circuit: observable.apply_layout(isa_circuit.layout)"


def coerce_pubs(primitive: Primitive, pubs: Iterable[Any] | Any) -> list[SamplerPub | EstimatorPub]:
    """Turn circuits and tuples into qiskit's pub containers, naming the pub that is wrong.

    One circuit, one pub container, or one pub tuple (a tuple whose first item is a circuit and
    whose other items are not) is one pub; any other iterable is a sequence of pubs.
    """
    pub_list = [pubs] if _is_one_pub(pubs) else list(pubs)
    if not pub_list:
        raise InvalidJobInputError("No pubs given: pass at least one circuit or pub tuple")
    out: list[SamplerPub | EstimatorPub] = []
    for index, pub in enumerate(pub_list):
        _check_finite(primitive, index, pub)
        try:
            out.append(SamplerPub.coerce(pub) if primitive is Primitive.SAMPLER else EstimatorPub.coerce(pub))
        except (ValueError, TypeError) as exc:
            hint = WIDTH_HINT if "does not match the number of qubits" in str(exc) else ""
            raise InvalidJobInputError(
                f"Pub {index} is not a valid {primitive.value} pub: {exc}{hint}"
            ) from None
    return out


# What each item of a pub tuple after the circuit holds, per primitive.
_PUB_ITEMS = {
    Primitive.SAMPLER: ("parameter values", "shots"),
    Primitive.ESTIMATOR: ("observables", "parameter values", "precision"),
}


def _check_finite(primitive: Primitive, index: int, pub: Any) -> None:
    """Refuse NaN or infinity in a pub tuple's numbers, naming the item: qiskit would misname it.

    (A NaN coefficient reaches qiskit's observable check as "non-Hermitian", which it is not.)
    """
    if not isinstance(pub, tuple):
        return
    for name, item in zip(_PUB_ITEMS[primitive], pub[1:], strict=False):
        if not _all_finite(item):
            raise InvalidJobInputError(f"Pub {index}: the {name} contain NaN or infinity")


def _all_finite(value: Any) -> bool:
    """Whether every number in ``value`` (nested lists, dicts, arrays, operators) is finite."""
    return all(bool(np.all(np.isfinite(number))) for number in _numbers(value))


def _numbers(value: Any) -> Iterator[Any]:
    """The numbers (or numeric arrays) inside a pub item; labels and other leaves give none."""
    coeffs = getattr(value, "coeffs", None)  # SparsePauliOp and kin
    if coeffs is not None:
        yield coeffs
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype == object):
        for item in value if isinstance(value, (list, tuple)) else value.flat:
            yield from _numbers(item)
    elif (isinstance(value, np.ndarray) and value.dtype.kind in "fc") or isinstance(
        value, (float, complex, np.floating, np.complexfloating)
    ):
        yield value


def _is_one_pub(pubs: Any) -> bool:
    if isinstance(pubs, (QuantumCircuit, SamplerPub, EstimatorPub)):
        return True
    return (
        isinstance(pubs, tuple)
        and bool(pubs)
        and isinstance(pubs[0], QuantumCircuit)
        and not any(isinstance(item, (QuantumCircuit, tuple, SamplerPub, EstimatorPub)) for item in pubs[1:])
    )


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


@dataclass(frozen=True)
class SubmitCall:
    """One submit call, checked: what to send, and the run context it was made in."""

    primitive: Primitive
    primitive_api: PrimitiveApi
    chunks: list[list[SamplerPub | EstimatorPub]]
    backend: str
    options: dict[str, Any]
    user_tags: tuple[str, ...]
    detached: bool
    call_key: str | None
    flow_run_id: object | None
    task_run_id: object | None
    session: sessions.IBMQuantumSession | None = None
    deployment_id: object | None = None
    # No earlier execution can have submitted under the call's keys: nothing to adopt, no lookup.
    first_run: bool = False

    @property
    def session_id(self) -> str | None:
        return self.session.session_id if self.session is not None else None

    def tags(self, index: int) -> list[str]:
        """The tags of the call's ``index``-th job, with its idempotency key and its session."""
        return job_tags.job_tags(
            flow_run_id=self.flow_run_id,
            task_run_id=self.task_run_id,
            submit_key=job_key(self.call_key, index),
            detached=self.detached,
            session_id=self.session_id,
            deployment_id=self.deployment_id,
            user_tags=self.user_tags,
        )


def plan_submit(
    primitive: Primitive,
    pubs: Iterable[Any] | Any,
    *,
    backend: str,
    options: Mapping[str, Any] | None,
    tags: Sequence[str] | None,
    detached: bool,
    idempotency_key: str | None,
    max_pubs_per_job: int | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> SubmitCall:
    """Check what needs no request (pubs, options, key, API) and read the run context; no I/O."""
    api = check_primitive_api(primitive, primitive_api)
    coerced = coerce_pubs(primitive, pubs)
    _check_options(primitive, options or {})
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
    if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags or ()):
        raise InvalidJobInputError("tags must be a list of strings, e.g. ['experiment:bell']")
    size = max_pubs_per_job or len(coerced)
    if size < 1:
        raise InvalidJobInputError(f"max_pubs_per_job must be positive, not {max_pubs_per_job}")
    session = sessions.current_session()
    if session is not None:
        sessions.check_use(session, backend, detached)
    context = TaskRunContext.get()
    task_run = context.task_run if context else None
    flow_context = FlowRunContext.get()
    flow_run = flow_context.flow_run if flow_context else None
    return SubmitCall(
        primitive=primitive,
        primitive_api=api,
        chunks=[coerced[start : start + size] for start in range(0, len(coerced), size)],
        backend=backend,
        options=dict(options or {}),
        user_tags=tuple(tags or ()),
        detached=detached,
        call_key=idempotency_key,
        flow_run_id=task_run.flow_run_id if task_run else None,
        task_run_id=task_run.id if task_run else None,
        session=session,
        deployment_id=flow_run.deployment_id if flow_run else None,
        # Last, once every check has passed: the claim is spent by the execution that may submit.
        first_run=claim_first_run(idempotency_key) if idempotency_key is not None else task_run is None,
    )


def perform_submit(gateway: IQPGateway, call: SubmitCall, log: Log) -> list[JobRef]:
    """Check the pubs against the backend, then submit (or adopt) each job of the call; blocking."""
    check_call(gateway, call)
    return [
        _adopt_earlier(gateway, call, index, log) or _create(gateway, call, index, chunk, log)
        for index, chunk in enumerate(call.chunks)
    ]


async def aperform_submit(gateway: IQPGateway, call: SubmitCall, log: Log) -> list[JobRef]:
    """``perform_submit`` for the event loop: each request runs in a thread, and a submit held back by
    an in-flight cap waits on the loop (``inflight.room``), not in a thread of its own."""
    await anyio.to_thread.run_sync(check_call, gateway, call)
    refs = []
    for index, chunk in enumerate(call.chunks):
        ref = await anyio.to_thread.run_sync(_adopt_earlier, gateway, call, index, log)
        if ref is None:
            async with inflight.room(gateway, call.tags(index), log):
                ref = await anyio.to_thread.run_sync(_create, gateway, call, index, chunk, log)
        refs.append(ref)
    return refs


def check_call(gateway: IQPGateway, call: SubmitCall) -> None:
    """The checks that need IBM: the session's account, the backend, and the pubs' ISA against it."""
    if call.session is not None:
        sessions.check_gateway(call.session, gateway)
    target = gateway.backend(call.backend)
    for chunk in call.chunks:
        check_pubs(chunk, target)


def _key_tag(call: SubmitCall, index: int) -> str:
    return next(tag for tag in call.tags(index) if tag.startswith(job_tags.SUBMIT_KEY_PREFIX))


def _adopt_earlier(gateway: IQPGateway, call: SubmitCall, index: int, log: Log) -> JobRef | None:
    """The job an earlier run of this call created, if one is worth adopting (no request on a first run)."""
    if call.first_run:
        return None
    key_tag = _key_tag(call, index)
    earlier = gateway.list_jobs(tags=[key_tag])
    adopted = _adopt(gateway, earlier, call, key_tag, log)
    if adopted is not None:
        log(f"Adopted job {adopted.job_id}, submitted by an earlier run of this call ({adopted.backend})")
        return adopted
    for ended in earlier:
        log(f"Earlier job {ended.job_id} of this call ended {ended.status.value}; submitting a new one")
    return None


def _create(
    gateway: IQPGateway, call: SubmitCall, index: int, pubs: list[SamplerPub | EstimatorPub], log: Log
) -> JobRef:
    """POST the job, below the caps, within the budget and the rate; adopt it if the POST failed
    after creating it."""
    tags, key_tag = call.tags(index), _key_tag(call, index)
    qpu_budget = budget.QPUBudget.from_settings()
    estimate = 0.0
    if qpu_budget is not None:
        estimate = budget.estimate_job_seconds(pubs, gateway.backend(call.backend), call.options)
        tags = [*tags, budget.estimate_tag(estimate)]  # pending, the job counts at its estimate
    try:
        with (
            inflight.admission(gateway, tags, log),  # below the caps on jobs pending, if any
            budget.admission(gateway, tags, estimate, qpu_budget),  # spent + estimate within budget
            attempts.counting("POST") as posts,
        ):
            job = throttle.create_job(  # within IBM's creation rate, shared by the account's processes
                gateway.credentials,
                lambda: gateway.submit(
                    call.primitive,
                    pubs,
                    call.backend,
                    call.options,
                    tags,
                    call.primitive_api,
                    session_id=call.session_id,
                ),
                log,
            )
    except IQPUnavailableError:
        # The POST may have created the job (or several) before the error: adopt rather than leak.
        adopted = _adopt(gateway, gateway.list_jobs(tags=[key_tag]), call, key_tag, log)
        if adopted is None:
            raise
        log(f"Submit failed after IBM created job {adopted.job_id}; adopted it")
        return adopted
    log(f"Submitted {call.primitive.value} job {job.job_id} to {call.backend} ({len(pubs)} pubs)")
    if posts.once:  # one POST, sent once and answered: IBM made this job and no other
        return job
    # The client re-sent the POST (a 5xx, a failed connection): each sending may have made a job.
    after = gateway.list_jobs(tags=[key_tag])
    _cancel_duplicates(gateway, after, key_tag, job.job_id, log)
    # Built from IBM's record, as an adopting retry builds it, so both attempts return equal refs.
    listed = next((found for found in after if found.job_id == job.job_id), None)
    return _ref(listed, call, gateway) if listed is not None else job


# An earlier job that ended like this is not what a retry wants back: it submits a new one.
NOT_ADOPTED = frozenset({JobStatus.ERROR, JobStatus.CANCELLED})


def _adopt(
    gateway: IQPGateway, found: list[JobSnapshot], call: SubmitCall, key_tag: str, log: Log
) -> JobRef | None:
    """The oldest job of the key that did not fail or get cancelled; younger live ones are duplicates."""
    usable = sorted(
        (job for job in found if job.status not in NOT_ADOPTED), key=lambda s: (s.created is None, s.created)
    )
    if not usable:
        return None
    keep = usable[0]
    _cancel_duplicates(gateway, usable, key_tag, keep.job_id, log)
    return _ref(keep, call, gateway)


def _ref(snapshot: JobSnapshot, call: SubmitCall, gateway: IQPGateway) -> JobRef:
    return JobRef.from_snapshot(
        snapshot,
        instance=gateway.credentials.instance,
        primitive=call.primitive,
        primitive_api=call.primitive_api,
        backend=call.backend,
    )


def _cancel_duplicates(
    gateway: IQPGateway, found: list[JobSnapshot], key_tag: str, keep: str, log: Log
) -> None:
    try:
        for extra in found:
            if extra.job_id != keep and not extra.status.is_final:
                gateway.cancel(extra.job_id)
                log(f"Cancelled duplicate job {extra.job_id} (the client re-sent the POST; kept {keep})")
    except IQPError as exc:
        log(f"Could not check for duplicate jobs of {keep}: {exc}; the reaper will find any")


def submit_jobs(
    primitive: Primitive,
    pubs: Iterable[Any] | Any,
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    idempotency_key: str | None = None,
    max_pubs_per_job: int | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> list[JobRef]:
    """Check, tag and submit the jobs of one call, adopting any an earlier run of the call created."""
    call = plan_submit(
        primitive,
        pubs,
        backend=backend,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        max_pubs_per_job=max_pubs_per_job,
        primitive_api=primitive_api,
    )
    return perform_submit(gateway_for(resolve_credentials(credentials)), call, run_logger(__name__).info)


async def asubmit_jobs(
    primitive: Primitive,
    pubs: Iterable[Any] | Any,
    *,
    backend: str,
    credentials: CredentialsLike = None,
    options: Mapping[str, Any] | None = None,
    tags: Sequence[str] | None = None,
    detached: bool = False,
    idempotency_key: str | None = None,
    max_pubs_per_job: int | None = None,
    primitive_api: PrimitiveApi | str = PrimitiveApi.V2,
) -> list[JobRef]:
    """``submit_jobs`` for async code: every request runs off the event loop."""
    call = plan_submit(
        primitive,
        pubs,
        backend=backend,
        options=options,
        tags=tags,
        detached=detached,
        idempotency_key=idempotency_key,
        max_pubs_per_job=max_pubs_per_job,
        primitive_api=primitive_api,
    )
    gateway = gateway_for(await aresolve_credentials(credentials))
    return await aperform_submit(gateway, call, run_logger(__name__).info)


def check_primitive_api(primitive: Primitive, primitive_api: PrimitiveApi | str) -> PrimitiveApi:
    """The API asked for, if it is one and the installed client offers it."""
    try:
        api = PrimitiveApi(primitive_api)
    except ValueError:
        choices = ", ".join(repr(api.value) for api in PrimitiveApi)
        raise InvalidJobInputError(f"primitive_api must be one of {choices}, not {primitive_api!r}") from None
    primitive_class(primitive, api)
    return api


def _check_options(primitive: Primitive, options: Mapping[str, Any]) -> None:
    if not isinstance(options, Mapping):
        raise InvalidJobInputError(
            "options must be a dict of primitive options, e.g. {'default_shots': 1000}"
        )
    shots = options.get("default_shots")
    if primitive is Primitive.SAMPLER and shots is not None and (not isinstance(shots, int) or shots <= 0):
        raise InvalidJobInputError(f"default_shots must be a positive integer, not {shots!r}")
    precision = options.get("default_precision")
    if primitive is Primitive.ESTIMATOR and precision is not None and not precision > 0:
        raise InvalidJobInputError(f"default_precision must be positive, not {precision!r}")
