"""A QPU-time budget: a job is created only if what it will cost fits in what is left.

Set ``PREFECT_QISKIT_JOBS_QPU_BUDGET`` (e.g. ``120s``, ``10m:instance``, ``90:flow-run``; the
scope defaults to ``deployment``), as ``PREFECT_QISKIT_JOBS_MAX_IN_FLIGHT`` is set: in the
deployment's job variables, a worker's environment, or a process's. Right before each POST the
submit compares

- **spent**: for the ``instance`` scope, what IBM's usage endpoint reports consumed; for the
  ``deployment`` and ``flow-run`` scopes, the QPU seconds of the scope's finished jobs, listed by
  their tags (``prefect-deployment:<id>``, ``prefect-flow-run:<id>``) from IBM's records. In both,
  the scope's queued and running jobs count at their estimate (the tag ``prefect-qpu-estimate:<s>``
  a budgeted submit puts on its job, or IBM's ``estimated_running_time_seconds`` when larger);
- **the job's estimate** (``estimate_job_seconds``): a conservative bound from the pubs;

with the budget, and refuses with ``QPUBudgetExceeded`` when spent + estimate would pass it: no
request creates anything. Check-then-post is atomic across processes through a one-slot Prefect
global concurrency limit per scope (``slots.held_alone_sync``; without a Prefect server, within
the process only), so two workers sharing a deployment budget never overspend it together.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from prefect_qiskit_jobs.errors import ConfigurationError, QPUBudgetExceeded
from prefect_qiskit_jobs.ibm.tags import DEPLOYMENT_PREFIX, FLOW_RUN_PREFIX, PROCESS_PREFIX, value_of
from prefect_qiskit_jobs.limits.slots import held_alone_sync, held_in_process, prefect_server_configured
from prefect_qiskit_jobs.models import span_of
from prefect_qiskit_jobs.settings import Settings

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    from prefect_qiskit_jobs.ibm.gateway import IQPGateway
    from prefect_qiskit_jobs.models import JobSnapshot

BudgetScope = Literal["flow-run", "deployment", "instance"]
SCOPES: tuple[str, ...] = get_args(BudgetScope)
QPU_BUDGET_VARIABLE = Settings.variables()["qpu_budget"]
LIMIT_PREFIX = "ibm-quantum-qpu-budget-"
ESTIMATE_PREFIX = "prefect-qpu-estimate:"

# The estimate's constants: a fixed charge per job (IBM bills each job's set-up and read-out
# beyond its shots), and the timings assumed where the backend gives none.
JOB_OVERHEAD_SECONDS = 2.0
DEFAULT_REP_DELAY_SECONDS = 250e-6
DEFAULT_GATE_SECONDS = 1e-6
DEFAULT_MEASURE_SECONDS = 5e-6
DEFAULT_SHOTS = 4096
DEFAULT_PRECISION = 0.015625  # the estimator's default: 4096 shots per observable


class QPUBudget(BaseModel):
    """At most ``seconds`` of QPU time for the jobs of one ``scope``: a flow run, a deployment (a
    flow run of none: that flow run), or the whole instance.

    Example:
        >>> QPUBudget.parse("2m:instance")
        QPUBudget(seconds=120.0, scope='instance')
        >>> QPUBudget(seconds=120).scope
        'deployment'
    """

    model_config = ConfigDict(frozen=True)

    seconds: float = Field(gt=0, description="QPU seconds the scope may spend.")
    scope: BudgetScope = Field("deployment", description="Whose jobs share the budget.")

    @classmethod
    def parse(cls, text: str) -> QPUBudget:
        """Read ``SECONDS[:SCOPE]``, the seconds bare or as a span: ``120``, ``120s``, ``10m:instance``."""
        amount, _, scope = text.partition(":")
        span = span_of(amount)
        try:
            seconds = span.total_seconds() if span is not None else float(amount)
        except ValueError:
            seconds = 0.0
        scope = scope.strip() or "deployment"
        if not seconds > 0 or scope not in SCOPES:
            raise ValueError(
                f"QPU budget {text!r} is not SECONDS[s|m|h][:flow-run|deployment|instance], e.g. '120s'"
            )
        return cls(seconds=seconds, scope=scope)  # type: ignore[arg-type]  # checked against SCOPES

    @classmethod
    def from_settings(cls, environ: Mapping[str, str] | None = None) -> QPUBudget | None:
        """The budget ``PREFECT_QISKIT_JOBS_QPU_BUDGET`` sets, or None when it is unset."""
        text = Settings.read(environ).qpu_budget
        if text is None:
            return None
        try:
            return cls.parse(text)
        except ValueError as exc:
            raise ConfigurationError(f"{QPU_BUDGET_VARIABLE}={text!r} is not valid: {exc}") from None


# ----- the estimate ----------------------------------------------------------------------------
def circuit_seconds(circuit: QuantumCircuit, target: Any) -> float:
    """One shot of ``circuit`` on ``target``: its critical path, each instruction taking the duration
    the target gives it (the longest of its kind where the qubits have none, else a default)."""
    free_at: dict[Any, float] = {}
    for instruction in circuit.data:
        name = instruction.operation.name
        if name == "barrier":
            continue
        qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
        duration = _duration(target, name, qubits)
        start = max((free_at.get(q, 0.0) for q in qubits), default=0.0)
        for q in qubits:
            free_at[q] = start + duration
    return max(free_at.values(), default=0.0)


def _duration(target: Any, name: str, qubits: tuple[int, ...]) -> float:
    if name == "delay":
        return 0.0  # a delay's own length is in its parameters; the rep delay bounds idling
    known = target.get(name) if target is not None and name in target else None
    if known:
        props = known.get(qubits)
        if props is not None and props.duration is not None:
            return float(props.duration)
        durations = [p.duration for p in known.values() if p is not None and p.duration is not None]
        if durations:
            return float(max(durations))
    return DEFAULT_MEASURE_SECONDS if name == "measure" else DEFAULT_GATE_SECONDS


def _pub_shots(pub: SamplerPub | EstimatorPub, options: Mapping[str, Any]) -> int:
    """Shots per execution of one pub: the sampler's, or 1/precision² for the estimator."""
    from qiskit.primitives.containers.sampler_pub import SamplerPub

    executions = max(1, int(math.prod(pub.shape)))
    if isinstance(pub, SamplerPub):
        shots = pub.shots or options.get("default_shots") or DEFAULT_SHOTS
        return int(shots) * int(executions)
    precision = pub.precision or options.get("default_precision") or DEFAULT_PRECISION
    return math.ceil(1 / float(precision) ** 2) * int(executions)


def estimate_job_seconds(
    pubs: Sequence[SamplerPub | EstimatorPub], backend: Any, options: Mapping[str, Any] | None = None
) -> float:
    """A conservative QPU-time estimate of one job: for each pub, shots x (circuit duration + the
    backend's rep delay), summed, plus ``JOB_OVERHEAD_SECONDS``.

    Shots: a sampler pub's (else ``default_shots``, else 4096), times its parameter sets; an
    estimator pub runs ``1/precision²`` shots per element of its broadcast shape.
    """
    target = getattr(backend, "target", None)
    configuration = backend.configuration() if hasattr(backend, "configuration") else None
    rep_delay = getattr(configuration, "default_rep_delay", None) or DEFAULT_REP_DELAY_SECONDS
    total = JOB_OVERHEAD_SECONDS
    for pub in pubs:
        total += _pub_shots(pub, options or {}) * (circuit_seconds(pub.circuit, target) + float(rep_delay))
    return round(total, 3)


def estimate_tag(seconds: float) -> str:
    return f"{ESTIMATE_PREFIX}{seconds:g}"


def charged_seconds(job: JobSnapshot) -> float:
    """What a job counts against a budget: its QPU seconds once final, its estimate while pending."""
    if job.status.is_final:
        return job.quantum_seconds or 0.0
    return pending_seconds(job)


def pending_seconds(job: JobSnapshot) -> float:
    """A pending job at its estimate: its tag's, or IBM's when larger; the per-job overhead at least."""
    tagged = value_of(list(job.tags), ESTIMATE_PREFIX)
    estimates = [JOB_OVERHEAD_SECONDS, job.estimated_running_seconds or 0.0]
    with contextlib.suppress(ValueError, TypeError):
        estimates.append(float(tagged))  # type: ignore[arg-type]
    return max(estimates)


# ----- the check -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetScopeOf:
    """The jobs a budget covers for one submit: those carrying ``tag`` (None: the instance's)."""

    budget: QPUBudget
    tag: str | None
    label: str

    def limit_name(self, gateway: IQPGateway) -> str:
        """The one-slot Prefect limit making check-then-post atomic: a digest of instance and scope."""
        credentials = gateway.credentials
        parts = [credentials.url, credentials.channel, credentials.instance, self.tag or ""]
        return LIMIT_PREFIX + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def scope_for(budget: QPUBudget, job_tags: Sequence[str]) -> BudgetScopeOf:
    """Whose jobs share ``budget`` with a job tagged ``job_tags`` (a deployment, else its flow run)."""
    if budget.scope == "instance":
        return BudgetScopeOf(budget, None, "the instance")
    order = [(FLOW_RUN_PREFIX, "flow run"), (PROCESS_PREFIX, "process")]
    if budget.scope == "deployment":
        order.insert(0, (DEPLOYMENT_PREFIX, "deployment"))
    for prefix, label in order:
        value = value_of(list(job_tags), prefix)
        if value is not None:
            return BudgetScopeOf(budget, f"{prefix}{value}", f"{label} {value}")
    raise ConfigurationError(f"A job tagged {list(job_tags)} belongs to no {budget.scope} to budget")


def spent_seconds(gateway: IQPGateway, scope: BudgetScopeOf) -> float:
    """What the scope has spent, and holds in pending jobs at their estimates (see the module)."""
    if scope.tag is None:
        consumed = float(gateway.usage().get("usage_consumed_seconds") or 0.0)
        return consumed + sum(pending_seconds(job) for job in gateway.list_jobs(pending=True))
    return sum(charged_seconds(job) for job in gateway.list_jobs(tags=[scope.tag]))


def check(budget_scope: BudgetScopeOf, spent: float, estimate: float) -> None:
    """Refuse (``QPUBudgetExceeded``) a job whose estimate does not fit in what the budget has left."""
    budget = budget_scope.budget.seconds
    if spent + estimate > budget:
        left = max(0.0, budget - spent)
        raise QPUBudgetExceeded(
            f"QPU budget of {budget_scope.label} exceeded: budget {budget:g} s, spent {spent:.3f} s "
            f"(finished jobs, and pending ones at their estimates), this job's estimate {estimate:.3f} s, "
            f"{left:.3f} s left; nothing was submitted. Raise {QPU_BUDGET_VARIABLE} or wait for usage "
            "to be reset",
            budget_seconds=budget,
            spent_seconds=spent,
            estimate_seconds=estimate,
            scope=budget_scope.label,
        )


@dataclass(frozen=True)
class BudgetReading:
    """A budget as its last check in this process found it, for the run's job board to show."""

    scope: str
    budget_seconds: float
    spent_seconds: float

    def line(self) -> str:
        left = max(0.0, self.budget_seconds - self.spent_seconds)
        return (
            f"QPU budget ({self.scope}): {self.budget_seconds:g} s, spent {self.spent_seconds:.3f} s, "
            f"{left:.3f} s left (pending jobs at their estimates, as of the last submit)"
        )


_readings: dict[str, BudgetReading] = {}
_READINGS_KEPT = 256


def reading_for(flow_run_id: object) -> BudgetReading | None:
    """The last budget check of a submit of this flow run in this process, if any."""
    return _readings.get(str(flow_run_id))


def _record(job_tags: Sequence[str], reading: BudgetReading) -> None:
    flow_run_id = value_of(list(job_tags), FLOW_RUN_PREFIX)
    if flow_run_id is None:
        return
    with _process_locks_lock:
        _readings.pop(flow_run_id, None)
        _readings[flow_run_id] = reading
        while len(_readings) > _READINGS_KEPT:  # a worker lives through many runs
            _readings.pop(next(iter(_readings)))


_process_locks: dict[str, threading.Lock] = {}
_process_locks_lock = threading.Lock()


def _process_lock(name: str) -> threading.Lock:
    with _process_locks_lock:
        return _process_locks.setdefault(name, threading.Lock())


@contextlib.contextmanager
def admission(
    gateway: IQPGateway, job_tags: Sequence[str], estimate: float, budget: QPUBudget | None
) -> Iterator[None]:
    """Hold the scope's lock (this process) and one-slot limit (every process), check the budget,
    and let the ``with`` body POST; without a budget, nothing at all."""
    if budget is None:
        yield
        return
    scope = scope_for(budget, job_tags)
    name = scope.limit_name(gateway)
    hold = held_alone_sync if prefect_server_configured() else held_in_process
    with _process_lock(name), hold([name]):
        spent = spent_seconds(gateway, scope)
        try:
            check(scope, spent, estimate)
        except QPUBudgetExceeded:
            _record(job_tags, BudgetReading(scope.label, budget.seconds, spent))
            raise
        _record(job_tags, BudgetReading(scope.label, budget.seconds, spent + estimate))
        yield
