"""``IBMJobCache``: a Prefect cache policy under which the same work is one IBM job.

A submit task is ``NO_CACHE``: every call is a job. Given this policy instead
(``submit_sampler_job.with_options(cache_policy=IBMJobCache())``), a submit keys its call on the
work itself and Prefect looks the key up before running the task; a hit returns the earlier job's
``JobRef`` (the task run ends ``Cached``) and creates no job, in any flow run or process that shares
the result storage. Prefect's own ``cache_expiration`` and ``refresh_cache`` apply as to any task.

The key is a SHA-256 of the work, and of nothing a run or a person's account adds to it:

- the submit task (which primitive, one job or split ones and ``max_pubs_per_job``) and its
  ``primitive_api``;
- each pub: its circuit as QPY bytes (the circuit's name, its layout and its parameters' random
  UUIDs, none of which changes what runs, left out, so the same circuit built by another process
  gives the same bytes), its parameter values in the circuit's parameter order, its shots
  (Sampler) or observables and precision (Estimator);
- the options, as canonical JSON;
- the instance: channel, URL and instance CRN (never the token);
- the backend, and its calibration: the ``last_update_date`` of its properties, read from IBM when
  the key is computed, so a recalibrated device is new work.

Tags, ``detached``, ``fresh`` and the idempotency key are about the call, not the work: they are
not in the key.

A hit is only as good as the job behind it. Before Prefect reads the entry, the policy checks that
each cached job can still give a result: its result is in result storage (under
``qiskit-result-<job id>``), or IBM still has the job and it neither failed nor was cancelled
(a private job that ended counts only with its result stored: IBM gives that result once). If
not, or if the entry's value can no longer be read, it logs a warning, marks the entry expired,
and the submit creates a new job whose entry replaces it.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, cast

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.results import ResultStore
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE
from prefect.types import DateTime

from prefect_qiskit_jobs.blocks import IBMQuantumCredentials, resolve_credentials
from prefect_qiskit_jobs.errors import InvalidJobInputError, IQPError, JobNotFoundError, QiskitJobsError
from prefect_qiskit_jobs.ibm.gateway import IQPGateway, gateway_for
from prefect_qiskit_jobs.ibm.mapping import snapshot_from_api
from prefect_qiskit_jobs.logs import Logger, id_list, run_logger
from prefect_qiskit_jobs.models import JobRef, JobStatus, Primitive, PrimitiveApi
from prefect_qiskit_jobs.results.fetch import result_key
from prefect_qiskit_jobs.results.serializer import RuntimeJSONSerializer

KEY_PREFIX = "qiskit-job-cache-"
# Bumped whenever what goes into a key changes, so that no entry keyed the old way is ever hit.
KEY_SCHEME = 1

# The submit tasks' functions by name (an async twin's without its "a"): (primitive, split into jobs).
SUBMIT_TASKS: dict[str, tuple[Primitive, bool]] = {
    "submit_sampler_job": (Primitive.SAMPLER, False),
    "submit_sampler_jobs": (Primitive.SAMPLER, True),
    "submit_estimator_job": (Primitive.ESTIMATOR, False),
    "submit_estimator_jobs": (Primitive.ESTIMATOR, True),
}
SUBMIT_MODULE = "prefect_qiskit_jobs.submit.tasks"


@dataclass
class IBMJobCache(CachePolicy):
    """A cache policy for the submit tasks: the same work on the same calibration is one IBM job.

    Opt in per task with Prefect's own options; ``cache_expiration`` and ``refresh_cache`` work as
    for any Prefect task. The entries are Prefect cache records in result storage (or in
    ``key_storage``), so every flow run and process that shares that storage shares the cache; the
    cached jobs' results must be in that storage too (``fetch_job_result`` keeps them there) or
    still at IBM. Computing the key reads the backend's calibration from IBM (its properties), and
    a hit reads the cached job's state: Prefect computes keys synchronously, so in an async flow
    those reads hold the event loop for their length.

    Use the policy alone: added to another (``+``), the entry checks it makes would look at a key
    that is not the entry's.

    Example:
        >>> from datetime import timedelta
        >>> from prefect_qiskit_jobs import IBMJobCache, submit_sampler_job
        >>> cached_submit = submit_sampler_job.with_options(
        ...     cache_policy=IBMJobCache(), cache_expiration=timedelta(days=1)
        ... )
    """

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """The key of the submit's work; None (no caching) when the work or its calibration cannot be read.

        Args:
            task_ctx: The submit's task run context.
            inputs: The submit's parameters.
            flow_parameters: The flow run's parameters (not part of the key).
            **kwargs: What Prefect may add.

        Returns:
            ``qiskit-job-cache-<sha256>``, or None.

        Raises:
            TypeError: The policy was given to a task that is not one of the package's submits.
        """
        primitive, split = submit_kind(task_ctx.task.fn)
        log = run_logger(__name__)
        try:
            work = describe_work(primitive, split, inputs)
            credentials = resolve_credentials(inputs.get("credentials"))
        except QiskitJobsError:
            return None  # the submit itself says what is wrong with its input or credentials
        gateway = gateway_for(credentials)
        try:
            calibration = backend_calibration(gateway, work["backend"])
        except QiskitJobsError as exc:
            log.warning("Not cached: could not read the calibration of %s (%s)", work["backend"], exc)
            return None
        key = work_key(work, account(credentials), calibration)
        if refreshing(task_ctx) or check_entry(task_ctx.result_store, key, gateway, log):
            return key
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        raise TypeError(
            "IBMJobCache keys the whole work of a submit: use it alone, not added to another policy"
        )


def submit_kind(fn: Any) -> tuple[Primitive, bool]:
    """The primitive of a submit task's function, and whether it splits its pubs into jobs."""
    name = getattr(fn, "__name__", "")
    kind = (
        SUBMIT_TASKS.get(name.removeprefix("a")) if getattr(fn, "__module__", "") == SUBMIT_MODULE else None
    )
    if kind is None:
        raise TypeError(f"IBMJobCache keys the package's submit tasks only, not {name or fn!r}")
    return kind


def describe_work(primitive: Primitive, split: bool, inputs: dict[str, Any]) -> dict[str, Any]:
    """What a submit call asks IBM to run, as plain JSON values; no I/O.

    Raises:
        InvalidJobInputError: The pubs, options or API are not valid (the submit will say so).
    """
    from prefect_qiskit_jobs.submit.call import check_primitive_api

    api = check_primitive_api(primitive, inputs.get("primitive_api", PrimitiveApi.V2))
    options = inputs.get("options") or {}
    try:
        canonical_options = json.loads(json.dumps(dict(options), sort_keys=True, default=repr))
    except (TypeError, ValueError) as exc:
        raise InvalidJobInputError(f"options must be a dict of primitive options: {exc}") from None
    return {
        "scheme": KEY_SCHEME,
        "primitive": primitive.value,
        "primitive_api": api.value,
        "max_pubs_per_job": inputs.get("max_pubs_per_job") if split else None,
        "backend": inputs.get("backend"),
        "options": canonical_options,
        "pubs": pub_digests(primitive, inputs.get("pubs")),
    }


def pub_digests(primitive: Primitive, pubs: Any) -> list[str]:
    """One SHA-256 per pub, of its circuit, parameter values, and shots or observables and precision."""
    from qiskit.primitives.containers.estimator_pub import EstimatorPub

    from prefect_qiskit_jobs.submit.call import coerce_pubs

    digests = []
    for pub in coerce_pubs(primitive, pubs):
        circuit = pub.circuit
        values = pub.parameter_values.as_array(circuit.parameters)
        parts: list[Any] = [
            circuit_digest(circuit),
            list(values.shape),
            hashlib.sha256(values.astype(float).tobytes()).hexdigest(),
        ]
        if isinstance(pub, EstimatorPub):
            parts += [_observables(pub.observables.tolist()), pub.precision]
        else:
            parts.append(pub.shots)
        digests.append(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest())
    return digests


def circuit_digest(circuit: Any) -> str:
    """A SHA-256 of the circuit's QPY bytes, the same for the same circuit built in any process.

    The name (``circuit-<n>`` when none was given, counted per process), the layout (QPY writes its
    registers in an order that varies between processes; what runs is the circuit's physical
    qubits) and the parameters' random UUIDs are replaced by fixed values first.
    """
    from qiskit import qpy
    from qiskit.circuit import Parameter

    canonical = circuit.copy()
    canonical.name = "circuit"
    canonical._layout = None  # qiskit offers no public setter; the copy is ours
    parameters = list(canonical.parameters)
    if parameters:
        fixed = {p: Parameter(p.name, uuid=uuid.UUID(int=index)) for index, p in enumerate(parameters)}
        canonical.assign_parameters(fixed, inplace=True)
    buffer = io.BytesIO()
    qpy.dump(canonical, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _observables(value: Any) -> Any:
    """Observables as ``tolist()`` gives them (nested lists of ``{pauli: coefficient}``), canonical."""
    if isinstance(value, dict):
        return sorted((str(pauli), repr(complex(coeff))) for pauli, coeff in value.items())
    if isinstance(value, Iterable) and not isinstance(value, str):
        return [_observables(item) for item in value]
    return repr(value)


def account(credentials: IBMQuantumCredentials) -> dict[str, Any]:
    """Where the jobs live: channel, URL and instance, never the token."""
    return {"channel": credentials.channel, "url": credentials.url, "instance": credentials.instance}


def work_key(work: dict[str, Any], where: dict[str, Any], calibration: str) -> str:
    """The cache key of ``work`` on the instance ``where`` at the backend's ``calibration``."""
    material = json.dumps({**work, "account": where, "calibration": calibration}, sort_keys=True)
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def backend_calibration(gateway: IQPGateway, backend: str) -> str:
    """The date of the backend's current calibration, as its properties give it (one request).

    Raises:
        IQPError: IBM could not be asked, or the backend has no properties.
    """
    with gateway.translated(f"read the calibration of backend {backend}"):
        properties = gateway.client().backend_properties(backend)
    date = (properties or {}).get("last_update_date")
    if not date:
        raise IQPError(f"Backend {backend} has no calibration date in its properties")
    return str(date)


def refreshing(task_ctx: TaskRunContext) -> bool:
    """Whether Prefect will overwrite the entry anyway (``refresh_cache``), so it needs no check."""
    refresh = task_ctx.task.refresh_cache
    return bool(refresh if refresh is not None else PREFECT_TASKS_REFRESH_CACHE.value())


def check_entry(store: ResultStore, key: str, gateway: IQPGateway, log: Logger) -> bool:
    """Log a hit; expire an entry whose jobs can no longer give a result, so a new job replaces it.

    Returns:
        Whether Prefect may look the key up: False only when a dead entry could not be expired
        (the submit then runs uncached rather than return a job without a result).
    """
    if not store.exists(key):
        return True  # no entry, or an expired one: Prefect runs the submit and writes the entry
    try:
        jobs = cached_jobs(store.read(key).result)
    except Exception as exc:  # whatever storage raises, the entry cannot be read
        why = f"the entry's value can no longer be read ({type(exc).__name__}: {exc})"
        log.warning("The cached job for this work is gone: %s; submitting a new job", why)
        return expire(store, key, log)
    for job in jobs:
        gone = why_gone(job, store, gateway)
        if gone is not None:
            log.warning("Cached job %s cannot give a result: %s; submitting a new job", job.job_id, gone)
            return expire(store, key, log)
    created = jobs[0].created_at.isoformat() if jobs and jobs[0].created_at else "earlier"
    log.info(
        "Cache hit: the same work was submitted as job %s (created %s); reusing it, no new job",
        id_list([job.job_id for job in jobs]),
        created,
    )
    return True


def cached_jobs(value: Any) -> list[JobRef]:
    """The jobs an entry holds: one submit's ``JobRef``, or a splitting submit's list of them.

    Raises:
        TypeError: The entry holds something else.
    """
    jobs = [value] if isinstance(value, JobRef) else value
    if not isinstance(jobs, list) or not all(isinstance(job, JobRef) for job in jobs):
        raise TypeError(f"the entry holds {type(value).__name__}, not a submit's JobRef(s)")
    return jobs


def why_gone(job: JobRef, store: ResultStore, gateway: IQPGateway) -> str | None:
    """Why ``job`` can no longer give a result, or None if it can (or IBM cannot be asked now)."""
    stored = ResultStore(result_storage=store.result_storage, serializer=RuntimeJSONSerializer())
    if stored.exists(result_key(job)):
        return None
    try:
        with gateway.translated(f"read job {job.job_id}", job_id=job.job_id):
            record: dict[str, Any] = gateway.client().job_get(job.job_id, exclude_params=True)
    except JobNotFoundError:
        return "IBM no longer has the job, and its result is not in result storage"
    except IQPError:
        return None  # a new submit would meet the same trouble; the wait will say what it is
    status = snapshot_from_api(record).status
    if status in (JobStatus.ERROR, JobStatus.CANCELLED):
        return f"it ended {status.value}"
    if status is JobStatus.DONE and record.get("private"):
        return "its result was private (IBM gives it once) and is not in result storage"
    return None


def expire(store: ResultStore, key: str, log: Logger) -> bool:
    """Mark the entry expired, so Prefect runs the submit and overwrites it; False if storage refused."""
    try:
        # A stdlib datetime: the record's model takes one; Prefect's ``DateTime.now`` is deprecated.
        store.write(None, key=key, expiration=cast(DateTime, datetime.now(timezone.utc)))
    except Exception as exc:  # whatever storage raises, the submit must not meet the dead entry
        log.warning("Could not expire the dead cache entry (%s); this submit is not cached", exc)
        return False
    return True
