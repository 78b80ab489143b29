"""Cancelling jobs exactly once, whichever layer asks: the sensor, a flow hook or the reaper.

Three layers, because no single one sees every ending: the sensor cancels what it awaits when it
is interrupted; flow hooks (``on_cancellation``/``on_crashed``, opt-in ``on_failure``) cancel what
the run's tag finds pending; the reaper cancels pending jobs of runs that Prefect shows
Cancelled or Crashed, which covers SIGKILL and dead supervisors.

A layer cancels only jobs it has just seen non-final; a job that another layer of this process is
cancelling, or has already had an answer for, is skipped; IBM's 409 ("already final") counts as
success and leaves the result readable. A layer sends its cancels side by side, then confirms
them together by listing each run's jobs until they are seen final (a failed read leaves a job
unconfirmed, never resent), and reports each with the job id and the layer that sent it.

Sessions and batches (see ``sessions``) end with the run: a layer cancelling because the run is
ending also cancels every pending job of each session its jobs are in (found by the
``prefect-session:<id>`` tag), once each, then the session itself, once per process; across
processes, a later layer finds a session only through jobs still pending in it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any
from uuid import UUID

import anyio
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.exceptions import ObjectNotFound
from prefect.logging.loggers import flow_run_logger

from .blocks import CredentialsLike, IBMQuantumCredentials, aresolve_credentials, resolve_credentials
from .exceptions import IQPError, QiskitJobsError
from .models import JobSnapshot, JobStatus
from .monitoring import id_list
from .runtime import CancelOutcome, IQPGateway, gateway_for
from .shared_limits import account_limit_name, held_alone
from .tags import (
    DETACHED_TAG,
    FLOW_RUN_PREFIX,
    PACKAGE_TAG,
    SESSION_PREFIX,
    flow_run_tag,
    session_tag,
    value_of,
)

# Cancels one layer sends side by side; IBM takes seconds to answer each.
CANCELS_AT_ONCE = 16
CONFIRM_FIRST_PAUSE = 0.1
CONFIRM_MAX_PAUSE = 2.0
# How long a layer confirms its cancels: IBM takes seconds to stop a running job.
CONFIRM_SECONDS = 30.0


class Layer(str, Enum):
    """Who cancelled: named in every log line about a cancel."""

    SENSOR = "sensor"
    HOOK = "flow hook"
    REAPER = "reaper"
    RESUMER = "resumer"


@dataclass(frozen=True)
class CancelReport:
    """What happened to one job: ``sent`` says whether this call sent the cancel request."""

    job_id: str
    sent: bool
    outcome: str
    final_status: JobStatus | None

    def describe(self, layer: Layer) -> str:
        final = self.final_status.value if self.final_status else "not yet confirmed"
        return f"job {self.job_id}: {self.outcome} by the {layer.value} (now {final})"


# Jobs a layer of this process is cancelling right now, and jobs IBM has already answered for
# (cancel accepted, or 409): no layer of this process asks IBM about those again. A job seen
# pending by a later layer may just not look cancelled yet; a second request would be redundant.
_in_flight: set[str] = set()
_answered: set[str] = set()
_in_flight_lock = threading.Lock()
# Sessions a layer of this process has taken on to cancel: none is cancelled twice.
_sessions_claimed: set[str] = set()


def cancel_jobs(
    gateway: IQPGateway,
    jobs: Iterable[JobSnapshot],
    layer: Layer,
    log: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    end_sessions: bool = False,
) -> list[CancelReport]:
    """Cancel each non-final job once, all at once, then confirm them; blocking (async callers use a thread).

    IBM takes seconds to answer a cancel and more to stop a running job, so the requests go out
    side by side (at most ``CANCELS_AT_ONCE``), and the ends are confirmed together: one listing
    per flow run of the jobs (a job without a run tag is read alone), repeated with growing pauses
    for at most ``CONFIRM_SECONDS``. With ``end_sessions`` (the run is ending), the pending jobs
    of the sessions the jobs are in are cancelled too, then each session.
    """
    claimed = _claim([job for job in jobs if not job.status.is_final])
    session_ids = _claim_sessions(claimed) if end_sessions else []
    if session_ids:
        claimed += _claim(_pending_in(gateway, session_ids, log))
    if not claimed and not session_ids:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(CANCELS_AT_ONCE, len(claimed)))) as pool:
        outcomes = list(pool.map(lambda job: _send(gateway, job, layer, log), claimed))
        for session_id in session_ids:
            _end_session(gateway, session_id, layer, log)
    sent = {
        job.job_id: outcome for job, outcome in zip(claimed, outcomes, strict=True) if outcome is not None
    }
    finals = _confirm_all(gateway, [job for job in claimed if job.job_id in sent], sleep)
    reports = []
    for job in claimed:
        outcome = sent.get(job.job_id)
        if outcome is None:
            continue
        text = "cancel sent" if outcome is CancelOutcome.CANCELLED else "already final, nothing to cancel"
        report = CancelReport(job.job_id, outcome is CancelOutcome.CANCELLED, text, finals.get(job.job_id))
        log(report.describe(layer))
        reports.append(report)
    return reports


def _claim(jobs: list[JobSnapshot]) -> list[JobSnapshot]:
    """The jobs no other layer of this process is cancelling or has had an answer for; now ours."""
    unique = list({job.job_id: job for job in jobs}.values())
    with _in_flight_lock:
        mine = [job for job in unique if job.job_id not in _in_flight and job.job_id not in _answered]
        _in_flight.update(job.job_id for job in mine)
    return mine


def _claim_sessions(jobs: list[JobSnapshot]) -> list[str]:
    """The sessions of ``jobs`` that no layer of this process has taken on yet; now ours."""
    found = {value_of(job.tags, SESSION_PREFIX) for job in jobs}
    with _in_flight_lock:
        mine = sorted(
            session_id for session_id in found if session_id and session_id not in _sessions_claimed
        )
        _sessions_claimed.update(mine)
    return mine


def _pending_in(gateway: IQPGateway, session_ids: list[str], log: Callable[[str], None]) -> list[JobSnapshot]:
    """The pending jobs of these sessions: they end with the session, each with its own cancel."""
    pending: list[JobSnapshot] = []
    for session_id in session_ids:
        try:
            pending += gateway.list_jobs(tags=[session_tag(session_id)], pending=True)
        except IQPError as exc:
            log(f"Could not list the jobs of session {session_id}: {exc}; cancelling the session ends them")
    return [job for job in pending if DETACHED_TAG not in job.tags]


def _end_session(gateway: IQPGateway, session_id: str, layer: Layer, log: Callable[[str], None]) -> None:
    """Cancel a session once its jobs' cancels are sent: no job can join it after."""
    try:
        outcome = gateway.cancel_session(session_id)
    except IQPError as exc:
        log(f"Could not cancel session {session_id} ({layer.value}): {exc}; it ends at its maximum TTL")
        return
    done = "cancelled" if outcome is CancelOutcome.CANCELLED else "already ended"
    log(f"session {session_id}: {done} by the {layer.value}")


def _send(
    gateway: IQPGateway, job: JobSnapshot, layer: Layer, log: Callable[[str], None]
) -> CancelOutcome | None:
    answered = False
    try:
        outcome = gateway.cancel(job.job_id)
        answered = True
        return outcome
    except IQPError as exc:
        log(f"Could not cancel job {job.job_id} ({layer.value}): {exc}; the next layer will retry")
        return None
    finally:
        with _in_flight_lock:  # one step, so no other layer finds the job in neither set
            _in_flight.discard(job.job_id)
            if answered:
                _answered.add(job.job_id)


def _confirm_all(
    gateway: IQPGateway, jobs: list[JobSnapshot], sleep: Callable[[float], None]
) -> dict[str, JobStatus]:
    """The statuses of ``jobs`` once seen final (or as last seen, when the time runs out).

    A failed read only leaves a job unconfirmed; it never makes anyone send a cancel again.
    """
    seen: dict[str, JobStatus] = {}
    pause, waited = CONFIRM_FIRST_PAUSE, 0.0
    while True:
        open_jobs = [job for job in jobs if not (job.job_id in seen and seen[job.job_id].is_final)]
        if not open_jobs:
            return seen
        groups: dict[str | None, list[JobSnapshot]] = {}
        for job in open_jobs:
            groups.setdefault(value_of(job.tags, FLOW_RUN_PREFIX), []).append(job)
        for run_id, members in groups.items():
            with contextlib.suppress(IQPError):
                if run_id is not None and len(members) > 1:
                    listed = {s.job_id: s.status for s in gateway.list_jobs(tags=[flow_run_tag(run_id)])}
                    seen.update({job.job_id: listed[job.job_id] for job in members if job.job_id in listed})
                else:
                    for job in members:
                        seen[job.job_id] = gateway.read(job.job_id).status
        if waited >= CONFIRM_SECONDS:
            return seen
        sleep(pause)
        waited += pause
        pause = min(pause * 2, CONFIRM_MAX_PAUSE)


# ----- layer 2: flow hooks ----------------------------------------------------------------------
def cancel_jobs_hook(credentials: CredentialsLike = None) -> Callable[[Any, Any, Any], None]:
    """A flow hook that cancels the run's non-final IBM jobs (found by its tag), exactly once each.

    Attach it to ``on_cancellation`` and ``on_crashed`` (and, to opt in, ``on_failure``). Prefect
    runs it outside any run context, in the serve process or in a fresh subprocess of a process
    worker that re-imports the flow's module, so it builds everything from its arguments and the
    flow run: the name of a saved ``IBMQuantumCredentials`` block (loaded when the hook runs, in a
    sync or an async flow alike), or a block. With None, it uses the run's own ``credentials``
    parameter when the flow has one (so a deployment run with ``credentials: ibm-quantum`` is
    cleaned up with that block), and the ``QISKIT_IBM_*`` environment otherwise. Detached jobs
    are never cancelled.

    Example:
        >>> hook = cancel_jobs_hook()
        >>> @flow(on_cancellation=[hook], on_crashed=[hook])
        ... def experiment(): ...
    """

    def cancel_run_jobs(flow: Any, flow_run: Any, state: Any) -> None:
        logger = flow_run_logger(flow_run, flow)
        try:
            gateway = gateway_for(resolve_credentials(_hook_credentials(credentials, flow_run)))
            targets = _pending_of_run(gateway, str(flow_run.id))
        except QiskitJobsError as exc:
            logger.error("Could not list the IBM jobs of this run to cancel them: %s; the reaper will", exc)
            return
        ending = getattr(state, "name", None) or "ended"
        if not targets:
            logger.info("Run %s: no pending IBM jobs to cancel", ending.lower())
            return
        logger.info("Run %s: cancelling %d pending IBM job(s)", ending.lower(), len(targets))
        cancel_jobs(gateway, targets, Layer.HOOK, logger.info, end_sessions=True)

    return cancel_run_jobs


def _hook_credentials(given: CredentialsLike, flow_run: Any) -> CredentialsLike:
    """The hook's credentials, else the run's ``credentials`` parameter, else None (the environment)."""
    if given is not None:
        return given
    parameter = (getattr(flow_run, "parameters", None) or {}).get("credentials")
    return parameter if isinstance(parameter, str) and parameter else None


def cancel_jobs_on_exit(
    flow: Any = None, *, credentials: CredentialsLike = None, on_failure: bool = False
) -> Any:
    """Decorate a flow so that cancelling, crashing (and, opted in, failing) cancels its IBM jobs.

    Example:
        >>> @cancel_jobs_on_exit
        ... @flow
        ... async def experiment(): ...

        >>> @cancel_jobs_on_exit(credentials="ibm-quantum", on_failure=True)
        ... @flow
        ... def nightly(): ...
    """

    def attach(target: Any) -> Any:
        hook = cancel_jobs_hook(credentials)
        target.on_cancellation(hook)
        target.on_crashed(hook)
        if on_failure:
            target.on_failure(hook)
        return target

    return attach(flow) if flow is not None else attach


# ----- layer 3: the reaper ----------------------------------------------------------------------
REAPED_STATES = frozenset({StateType.CANCELLED, StateType.CRASHED})
RUN_CANCELS_LIMIT_PREFIX = "ibm-quantum-run-cancels-"


def run_cancels_limit(credentials: IBMQuantumCredentials) -> str:
    """The one-slot limit under which a reaper or a resumer cancels an ended run's jobs.

    Those layers run in processes of their own, often several at once; each re-lists a run's
    pending jobs while it holds the slot, so the second finds them cancelled and sends nothing.
    """
    return account_limit_name(RUN_CANCELS_LIMIT_PREFIX, credentials)


@dataclass(frozen=True)
class ReapDecision:
    """Whether the reaper may cancel a flow run's jobs, and why (pure, so it is tested alone)."""

    cancel: bool
    why: str


def decide(
    state_type: StateType | None, state_age_seconds: float, include_failed: bool, grace_seconds: float
) -> ReapDecision:
    """Cancel only for runs that are over and did not end well, once their hooks had their chance."""
    if state_type is None:
        return ReapDecision(False, "flow run unknown to this Prefect API (another server's?)")
    wanted = REAPED_STATES | ({StateType.FAILED} if include_failed else frozenset())
    if state_type not in wanted:
        return ReapDecision(False, f"flow run is {state_type.value}")
    if state_age_seconds < grace_seconds:
        return ReapDecision(
            False, f"flow run became {state_type.value} {state_age_seconds:.0f} s ago; hooks go first"
        )
    return ReapDecision(True, f"flow run is {state_type.value}")


@flow(name="qiskit-job-reaper", log_prints=False)
async def reap_orphaned_jobs(
    credentials: str | None = None,
    include_failed: bool = False,
    grace_seconds: float = 30.0,
    dry_run: bool = False,
) -> list[str]:
    """Cancel pending IBM jobs whose flow run was cancelled or crashed (opt in: failed).

    Covers what hooks cannot: a SIGKILLed flow process, a dead supervisor, a hook that did not
    fire. Jobs of runs still running or completed, jobs without a flow-run tag, and detached
    jobs are never touched. Several reapers (and resumers) may run at once: each run's jobs are
    re-listed and cancelled under ``run_cancels_limit``, so each job gets one request. Returns the
    ids of the jobs it cancelled (or would, with ``dry_run``).

    Args:
        credentials: Name of a saved ``IBMQuantumCredentials`` block; None reads ``QISKIT_IBM_*``.
        include_failed: Also reap jobs of Failed runs (a timed-out flow run is Failed).
        grace_seconds: Leave runs that ended more recently than this to their hooks.
        dry_run: Report, cancel nothing.
    """
    logger = get_run_logger()
    gateway = gateway_for(await aresolve_credentials(credentials))
    pending = await anyio.to_thread.run_sync(lambda: gateway.list_jobs(tags=[PACKAGE_TAG], pending=True))
    by_run: dict[str, list[JobSnapshot]] = {}
    for job in pending:
        run_id = value_of(job.tags, FLOW_RUN_PREFIX)
        if run_id is not None and DETACHED_TAG not in job.tags:
            by_run.setdefault(run_id, []).append(job)
    logger.info("%d pending IBM job(s) across %d flow run(s)", len(pending), len(by_run))
    reaped: list[str] = []
    async with get_client() as client:
        for run_id, jobs in by_run.items():
            state_type, age = await _run_state(client, run_id)
            decision = decide(state_type, age, include_failed, grace_seconds)
            if not decision.cancel:
                continue
            ids = [job.job_id for job in jobs]
            logger.info("Flow run %s: %s; cancelling %s", run_id, decision.why, id_list(ids))
            if dry_run:
                reaped.extend(ids)
                continue
            async with held_alone(client, run_cancels_limit(gateway.credentials)):
                still = await anyio.to_thread.run_sync(functools.partial(_pending_of_run, gateway, run_id))
                reports = await anyio.to_thread.run_sync(
                    functools.partial(
                        cancel_jobs, gateway, still, Layer.REAPER, logger.info, end_sessions=True
                    )
                )
            for report in reports:
                reaped.append(report.job_id)
                _log_to_run(run_id, report.describe(Layer.REAPER))
    return reaped


def _pending_of_run(gateway: IQPGateway, run_id: str) -> list[JobSnapshot]:
    """The run's pending jobs as of now, detached ones left out (another layer may have cancelled some)."""
    pending = gateway.list_jobs(tags=[flow_run_tag(run_id)], pending=True)
    return [job for job in pending if DETACHED_TAG not in job.tags]


async def _run_state(client: Any, run_id: str) -> tuple[StateType | None, float]:
    try:
        flow_run = await client.read_flow_run(UUID(run_id))
    except (ObjectNotFound, ValueError):
        return None, 0.0
    state = flow_run.state
    if state is None:
        return None, 0.0
    age = (datetime.now(timezone.utc) - state.timestamp).total_seconds() if state.timestamp else 0.0
    return state.type, age


def _log_to_run(run_id: str, message: str) -> None:
    """Leave a line in the reaped run's own log, where whoever looks at that run will see it."""
    with contextlib.suppress(Exception):
        flow_run_logger(flow_run_id=UUID(run_id)).info(message)
