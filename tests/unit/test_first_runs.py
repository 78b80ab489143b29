"""Which flow-run executions can have no earlier job: the run's own state says (no I/O)."""

from __future__ import annotations

from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun, FlowRunPolicy

from prefect_qiskit_jobs.submit.idempotency import first_execution


def run(run_count: int, pause_keys: set[str] | None = None, resuming: bool = False) -> FlowRun:
    policy = FlowRunPolicy(pause_keys=pause_keys or set(), resuming=resuming)
    return FlowRun(id=uuid4(), flow_id=uuid4(), run_count=run_count, empirical_policy=policy)


def test_a_run_that_entered_running_once_and_never_paused_runs_for_the_first_time() -> None:
    assert first_execution(run(1))


@pytest.mark.parametrize(
    "earlier",
    [
        run(2),  # a flow-run retry, or a re-run of a crashed run
        run(0),  # not yet Running: nothing says it is new
        run(1, pause_keys={"deferral"}),  # resumed after a suspension: the code runs again from the top
        run(1, resuming=True),
    ],
    ids=["retry", "not-running", "resumed-after-suspension", "resuming"],
)
def test_a_run_that_may_have_run_before_is_not_first(earlier: FlowRun) -> None:
    assert not first_execution(earlier)
