"""A test process that talked to another Prefect server still records its task runs on its own.

Task runs are recorded from events, and Prefect binds a process's events worker to the first
server it emitted to. Before ``talking_to`` drained it, the e2e suite's server took every later
task run of the session, and the lifecycle tests that read task runs found none.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL

from prefect_qiskit_jobs.emulator.server import free_port
from tests.prefect_servers import forget_events_worker, talking_to

from .conftest import current_flow_run_id
from .test_job_rate_limit import final_task_runs


@task
def double(value: int) -> int:
    return 2 * value


@flow
def doubled() -> tuple[str, int]:
    return current_flow_run_id(), double(21)


async def test_task_runs_reach_the_harness_after_events_sent_to_another_server() -> None:
    forget_events_worker()  # as in a fresh process: no events worker bound to any server yet
    with talking_to({PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):
        emit_event(event="test.elsewhere", resource={"prefect.resource.id": "test.elsewhere"})

    flow_run_id, value = doubled()

    assert value == 42
    runs = await final_task_runs(flow_run_id, 1)
    assert [run.state.type.value if run.state else None for run in runs] == ["COMPLETED"]
