"""Layer 2: flow hooks that cancel a run's pending jobs when it is cancelled or crashes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, overload

from prefect import Flow, State
from prefect.client.schemas.objects import FlowRun
from prefect.flows import FlowStateHook
from prefect.logging.loggers import flow_run_logger

from prefect_qiskit_jobs.blocks import (
    CredentialsLike,
    resolve_credentials,
)
from prefect_qiskit_jobs.cancel.fan_out import Layer, cancel_jobs
from prefect_qiskit_jobs.cancel.reaper import pending_of_run
from prefect_qiskit_jobs.errors import QiskitJobsError
from prefect_qiskit_jobs.ibm.gateway import gateway_for
from prefect_qiskit_jobs.ibm.tags import CANCEL_REQUESTED_TAG

P = ParamSpec("P")
R = TypeVar("R")


def cancel_jobs_hook(
    credentials: CredentialsLike = None,
) -> FlowStateHook[P, R]:
    """A flow hook that cancels the run's non-final IBM jobs (found by its tag), exactly once each.

    Attach it to ``on_cancellation`` and ``on_crashed`` (and, to opt in, ``on_failure``). Prefect
    runs it outside any run context, in the serve process or in a fresh subprocess of a process
    worker that re-imports the flow's module, so it builds everything from its arguments and the
    flow run: the name of a saved ``IBMQuantumCredentials`` block (loaded when the hook runs, in a
    sync or an async flow alike), or a block. With None, it uses the run's own ``credentials``
    parameter when the flow has one (so a deployment run with ``credentials: ibm-quantum`` is
    cleaned up with that block), and the ``QISKIT_IBM_*`` environment otherwise. Detached jobs
    are never cancelled. A job whose cancel IBM already accepted (the flow process's sensor sent
    it before Prefect killed the process) gets no second request: the hook confirms it ends, and
    names in the run's log the jobs still stopping when it gives up, for the reaper to confirm.

    Example:
        >>> from prefect import flow
        >>> hook = cancel_jobs_hook()
        >>> @flow(on_cancellation=[hook], on_crashed=[hook])
        ... def experiment(): ...
    """

    def cancel_run_jobs(flow: Flow[P, R], flow_run: FlowRun, state: State[Any]) -> None:
        logger = flow_run_logger(flow_run, flow)
        try:
            gateway = gateway_for(resolve_credentials(_hook_credentials(credentials, flow_run)))
            targets = pending_of_run(gateway, str(flow_run.id))
        except QiskitJobsError as exc:
            logger.error("Could not list the IBM jobs of this run to cancel them: %s; the reaper will", exc)
            return
        ending = getattr(state, "name", None) or "ended"
        if not targets:
            logger.info("Run %s: no pending IBM jobs to cancel", ending.lower())
            return
        requested = sum(CANCEL_REQUESTED_TAG in job.tags for job in targets)
        logger.info(
            "Run %s: %d pending IBM job(s); cancelling %d, confirming %d whose cancel IBM already accepted",
            ending.lower(),
            len(targets),
            len(targets) - requested,
            requested,
        )
        cancel_jobs(gateway, targets, Layer.HOOK, logger.info, end_sessions=True)

    return cancel_run_jobs


def _hook_credentials(given: CredentialsLike, flow_run: FlowRun) -> CredentialsLike:
    """The hook's credentials, else the run's ``credentials`` parameter, else None (the environment)."""
    if given is not None:
        return given
    parameter = (getattr(flow_run, "parameters", None) or {}).get("credentials")
    return parameter if isinstance(parameter, str) and parameter else None


@overload
def cancel_jobs_on_exit(
    flow: Flow[P, R], *, credentials: CredentialsLike = None, on_failure: bool = False
) -> Flow[P, R]: ...


@overload
def cancel_jobs_on_exit(
    flow: None = None, *, credentials: CredentialsLike = None, on_failure: bool = False
) -> Callable[[Flow[P, R]], Flow[P, R]]: ...


def cancel_jobs_on_exit(
    flow: Flow[P, R] | None = None, *, credentials: CredentialsLike = None, on_failure: bool = False
) -> Flow[P, R] | Callable[[Flow[P, R]], Flow[P, R]]:
    """Decorate a flow so that cancelling, crashing (and, opted in, failing) cancels its IBM jobs.

    Args:
        flow: The flow, when used bare as ``@cancel_jobs_on_exit``.
        credentials: As for ``cancel_jobs_hook``.
        on_failure: Cancel on failure too (a timed-out flow run is Failed, never Cancelled).

    Returns:
        The same flow with the hooks attached, or a decorator that attaches them.

    Example:
        >>> from prefect import flow
        >>> @cancel_jobs_on_exit
        ... @flow
        ... async def experiment(): ...

        >>> @cancel_jobs_on_exit(credentials="ibm-quantum", on_failure=True)
        ... @flow
        ... def nightly(): ...
    """

    def attach(target: Flow[P, R]) -> Flow[P, R]:
        hook: FlowStateHook[P, R] = cancel_jobs_hook(credentials)
        target.on_cancellation(hook)
        target.on_crashed(hook)
        if on_failure:
            target.on_failure(hook)
        return target

    return attach(flow) if flow is not None else attach
