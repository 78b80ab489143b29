"""Lines the resumer and the reaper leave name the flow run they act on, not '<unknown>'."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from uuid import uuid4

import pytest
from prefect.client.schemas.objects import FlowRun
from prefect.settings import PREFECT_LOGGING_TO_API_ENABLED, temporary_settings

from prefect_qiskit_jobs.logs import log_to_run


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[list[logging.LogRecord]]:
    handler = Collect()
    targets = [logging.getLogger("prefect.flow_runs"), logging.getLogger("resumer-output")]
    for logger in targets:
        logger.addHandler(handler)
    with temporary_settings({PREFECT_LOGGING_TO_API_ENABLED: False}):  # no API in a unit test
        yield handler.records
    for logger in targets:
        logger.removeHandler(handler)


def test_a_line_left_in_a_runs_log_carries_its_name_and_the_job(collected: list[logging.LogRecord]) -> None:
    run = FlowRun(id=uuid4(), name="brave-fox", flow_id=uuid4())
    output = logging.getLogger("resumer-output")
    output.setLevel(logging.INFO)

    log_to_run(run, "Cancelled job d1x2c3v4b5n6m7q8w9e0 (resumer)", also=output)

    in_run = [r for r in collected if r.name == "prefect.flow_runs"]
    assert [getattr(r, "flow_run_name", None) for r in in_run] == ["brave-fox"]
    assert [getattr(r, "flow_run_id", None) for r in in_run] == [str(run.id)]
    own = [r.getMessage() for r in collected if r.name == "resumer-output"]
    assert own == [f"Flow run 'brave-fox' ({run.id}): Cancelled job d1x2c3v4b5n6m7q8w9e0 (resumer)"]
