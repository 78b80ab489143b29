"""Layer 3: the reaper, which cancels pending jobs of runs that ended Cancelled or Crashed.

It covers what hooks cannot: a SIGKILLed flow process, a dead supervisor, a hook that did not fire.
It also confirms the end of jobs an earlier layer left still stopping (IBM accepted their cancel,
see ``fan_out``), without sending another request. Where the crash-zombie-runs automation is
installed, it crashes a Running run that automation missed (see ``automations``) before judging it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import anyio
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_logger
from prefect.states import Crashed

from prefect_qiskit_jobs.blocks import (
    IBMQuantumCredentials,
    aresolve_credentials,
)
from prefect_qiskit_jobs.cancel.automations import (
    alive_after_crash,
    installed_window,
    missed_by_automation,
    silence_of,
)
from prefect_qiskit_jobs.cancel.fan_out import Layer, cancel_jobs
from prefect_qiskit_jobs.ibm.gateway import RESEND_CAP_SECONDS, IQPGateway, gateway_for
from prefect_qiskit_jobs.ibm.tags import (
    CANCEL_REQUESTED_TAG,
    DETACHED_TAG,
    FLOW_RUN_PREFIX,
    PACKAGE_TAG,
    flow_run_tag,
    value_of,
)
from prefect_qiskit_jobs.limits.rate import resend_refused
from prefect_qiskit_jobs.limits.slots import account_limit_name, held_alone
from prefect_qiskit_jobs.logs import id_list, log_to_run, run_label
from prefect_qiskit_jobs.models import JobSnapshot

REAPED_STATES = frozenset({StateType.CANCELLED, StateType.CRASHED})
RUN_CANCELS_LIMIT_PREFIX = "ibm-quantum-run-cancels-"
_logger = get_logger("prefect_qiskit_jobs.cancel.reaper")


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
    jobs are never touched, with one exception: where the crash-zombie-runs automation is
    installed, a Running run silent for twice its window (a window Prefect missed because it
    ended while its server was down) is marked Crashed here, and then reaped; and a Crashed
    run whose process still sends heartbeats (crashed by mistake during an outage) keeps its
    jobs. Several reapers (and resumers) may run at once: each run's jobs are re-listed and
    cancelled under ``run_cancels_limit``, so each job gets one request. A job whose cancel IBM
    already accepted (tagged so by the layer that sent it, in any process) is only confirmed,
    never cancelled again. Returns the ids of the jobs it cancelled (or would, with ``dry_run``).

    Args:
        credentials: Name of a saved ``IBMQuantumCredentials`` block; None reads ``QISKIT_IBM_*``.
        include_failed: Also reap jobs of Failed runs (a timed-out flow run is Failed).
        grace_seconds: Leave runs that ended more recently than this to their hooks.
        dry_run: Report, cancel nothing.
    """
    logger = get_run_logger()
    gateway = gateway_for(await aresolve_credentials(credentials))
    pending = await anyio.to_thread.run_sync(lambda: list_pending(gateway, [PACKAGE_TAG], logger.warning))
    by_run: dict[str, list[JobSnapshot]] = {}
    for job in pending:
        run_id = value_of(job.tags, FLOW_RUN_PREFIX)
        if run_id is not None and DETACHED_TAG not in job.tags:
            by_run.setdefault(run_id, []).append(job)
    logger.info("%d pending IBM job(s) across %d flow run(s)", len(pending), len(by_run))
    reaped: list[str] = []
    async with get_client() as client:
        window = await installed_window(client) if by_run else None
        for run_id, jobs in by_run.items():
            flow_run, state_type, age = await _run_state(client, run_id)
            if state_type is StateType.RUNNING and window is not None and flow_run is not None:
                silence = await silence_of(client, flow_run)
                if missed_by_automation(silence, window) and not dry_run:
                    message = (
                        f"No event from the flow run for {silence.seconds:.0f} s, over twice the "
                        f"crash-zombie-runs window of {window.total_seconds():g} s: its process is gone"
                    )
                    await client.set_flow_run_state(flow_run.id, Crashed(message=message))
                    logger.warning("Flow run %s: %s; marked Crashed", run_label(flow_run), message)
                    state_type, age = StateType.CRASHED, grace_seconds
            decision = decide(state_type, age, include_failed, grace_seconds)
            if not decision.cancel:
                continue
            # The server's Crashed state, not one this pass just set (that run was silent).
            crashed = flow_run is not None and flow_run.state is not None and flow_run.state.is_crashed()
            if crashed and flow_run is not None and await alive_after_crash(client, flow_run):
                logger.warning(
                    "Flow run %s is Crashed but its process still sends heartbeats (crashed while the "
                    "Prefect server could not hear it): its jobs are left to it",
                    run_label(flow_run),
                )
                continue
            ids = [job.job_id for job in jobs if CANCEL_REQUESTED_TAG not in job.tags]
            stopping = [job.job_id for job in jobs if CANCEL_REQUESTED_TAG in job.tags]
            logger.info(
                "Flow run %s: %s; cancelling %s%s",
                run_label(flow_run or run_id),
                decision.why,
                id_list(ids) or "none",
                f"; confirming {id_list(stopping)} (cancel accepted earlier)" if stopping else "",
            )
            if dry_run:
                reaped.extend(ids)
                continue
            async with held_alone(client, run_cancels_limit(gateway.credentials)):
                still = await anyio.to_thread.run_sync(
                    functools.partial(pending_of_run, gateway, run_id, logger.warning)
                )
                reports = await anyio.to_thread.run_sync(
                    functools.partial(
                        cancel_jobs, gateway, still, Layer.REAPER, logger.info, end_sessions=True
                    )
                )
            for report in reports:
                if not report.requested_earlier:
                    reaped.append(report.job_id)
                log_to_run(flow_run or run_id, report.describe(Layer.REAPER), also=logger)
    return reaped


def pending_of_run(
    gateway: IQPGateway, run_id: str, log: Callable[[str], None] | None = None
) -> list[JobSnapshot]:
    """The run's pending jobs as of now, detached ones left out (another layer may have cancelled some)."""
    pending = list_pending(gateway, [flow_run_tag(run_id)], log)
    return [job for job in pending if DETACHED_TAG not in job.tags]


def list_pending(
    gateway: IQPGateway, tags: list[str], log: Callable[[str], None] | None = None
) -> list[JobSnapshot]:
    """Pending jobs carrying all ``tags``; a listing IBM cannot answer for now (429, 5xx, a dropped
    connection) is sent again (``resend_refused``), so one transient fault ends no cancelling layer's pass.
    """
    return resend_refused(
        lambda: gateway.list_jobs(tags=tags, pending=True),
        log or _logger.warning,
        RESEND_CAP_SECONDS,
        refused="the listing of pending jobs (429)",
        idempotent=True,
    )


async def _run_state(client: Any, run_id: str) -> tuple[FlowRun | None, StateType | None, float]:
    """The run, its state's type and the state's age in seconds (None: unknown to this API)."""
    try:
        flow_run: FlowRun = await client.read_flow_run(UUID(run_id))
    except (ObjectNotFound, ValueError):
        return None, None, 0.0
    state = flow_run.state
    if state is None:
        return flow_run, None, 0.0
    age = (datetime.now(timezone.utc) - state.timestamp).total_seconds() if state.timestamp else 0.0
    return flow_run, state.type, age
