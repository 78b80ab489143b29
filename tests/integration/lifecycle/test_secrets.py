"""The API key never shows: not in logs, artifacts, results, errors, run parameters or stored records."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_HOME, PREFECT_SERVER_DATABASE_CONNECTION_URL
from pydantic import SecretStr
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    IBMQuantumCredentials,
    IQPAuthenticationError,
    JobFailedError,
    JobStatus,
    await_for_job,
    await_for_jobs,
    fetch_job_result,
    submit_sampler_job,
)
from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from tests.e2e.postgres import Postgres

from .conftest import (
    FAST_POLL,
    LIFECYCLE_DATABASE,
    OPTIONS,
    SMALL_BACKEND,
    artifacts,
    assert_bell,
    counts_of,
    files_under,
    point_environment_at,
    run_logs,
)

SECRET = "tok-SECRET-1234567890"
WRONG_KEY = "tok-WRONG-0987654321"


@pytest.fixture(scope="module")
def secret_emulator() -> Iterator[RunningEmulator]:
    with start_emulator(EmulatorConfig(api_keys=(SecretStr(SECRET),), concurrency=2)) as emulator:
        yield emulator


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Capture every record at DEBUG, Prefect's own loggers (which do not propagate) included."""
    caplog.set_level(logging.DEBUG)
    prefect_logger = logging.getLogger("prefect")
    prefect_logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        prefect_logger.removeHandler(caplog.handler)


def error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def database_files(postgres: Postgres | None, scratch: Path) -> list[Path]:
    """What the session's Prefect server stored: a dump of its PostgreSQL database, else the
    harness's SQLite database with its journal files."""
    if postgres is not None:
        return [postgres.dump(LIFECYCLE_DATABASE, scratch / "prefect.sql")]
    url = str(PREFECT_SERVER_DATABASE_CONNECTION_URL.value())
    database = Path(url.split(":///", 1)[1])
    return sorted(database.parent.glob(database.name + "*"))


async def test_the_api_key_appears_nowhere_a_run_leaves_a_trace(
    secret_emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    every_log_record: pytest.LogCaptureFixture,
    bell_isa: QuantumCircuit,
    postgres: Postgres | None,
    tmp_path: Path,
) -> None:
    point_environment_at(secret_emulator, monkeypatch)
    credentials = IBMQuantumCredentials.for_emulator(secret_emulator)
    assert credentials.token.get_secret_value() == SECRET

    @flow
    async def everything(credentials: IBMQuantumCredentials) -> dict[str, Any]:
        good = submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS)
        failing = submit_sampler_job(
            [bell_isa],
            backend=SMALL_BACKEND,
            credentials=credentials,
            options=OPTIONS,
            tags=["emulator:fail=boom"],
        )
        finals = await await_for_jobs(
            [good, failing], credentials=credentials, poll=FAST_POLL, raise_on_failure=False
        )
        counts = counts_of(fetch_job_result(good, credentials=credentials))
        errors: list[BaseException] = []
        with pytest.raises(JobFailedError) as failed_wait:
            await await_for_job(failing, credentials=credentials, poll=FAST_POLL)
        errors.append(failed_wait.value)
        with pytest.raises(JobFailedError) as failed_fetch:
            fetch_job_result(failing, credentials=credentials)
        errors.append(failed_fetch.value)
        wrong = IBMQuantumCredentials.for_emulator(secret_emulator, api_key=WRONG_KEY)
        with pytest.raises(IQPAuthenticationError) as refused:
            submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=wrong, options=OPTIONS)
        errors.append(refused.value)
        return {"counts": counts, "finals": finals, "errors": errors}

    state = await everything(credentials, return_state=True)
    out = await state.result()
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None

    # The run did what it should, so there was something to leak.
    assert_bell(out["counts"])
    assert [s.status for s in out["finals"]] == [JobStatus.DONE, JobStatus.ERROR]
    assert len(out["errors"]) == 3

    async with get_client() as client:
        flow_run = await client.read_flow_run(flow_run_id)
        task_runs = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    logs = await run_logs(flow_run_id)
    run_artifacts = await artifacts(flow_run_id=flow_run_id)
    assert any("is DONE" in line for line in logs)
    assert any(a.key and a.key.startswith("qiskit-wait-") for a in run_artifacts)
    # The block went in as a parameter; the API holds it with its token masked.
    assert flow_run.parameters["credentials"]["instance"] == credentials.instance
    assert "token" in flow_run.parameters["credentials"]

    traces = {
        "caplog": every_log_record.text,
        "run logs": "\n".join(logs),
        "artifacts": json.dumps([a.model_dump(mode="json") for a in run_artifacts]),
        "flow run": flow_run.model_dump_json(),
        "task runs": json.dumps([t.model_dump(mode="json") for t in task_runs]),
        "result": json.dumps(
            {"counts": out["counts"], "finals": [s.model_dump(mode="json") for s in out["finals"]]}
        ),
        "errors": "\n".join(error_text(e) for e in out["errors"]),
    }
    for where, text in traces.items():
        assert text, f"nothing captured from {where}"
        assert SECRET not in text, f"the API key leaked into the {where}"
        assert WRONG_KEY not in text, f"the wrong API key leaked into the {where}"

    database = database_files(postgres, tmp_path)
    stored = [*files_under(Path(PREFECT_HOME.value())), *database]
    job_id = out["finals"][0].job_id.encode()
    # The scan reads what the API stored: the job's id is in there (in its log lines), the key is not.
    assert any(job_id in path.read_bytes() for path in database)
    for path in stored:
        data = path.read_bytes()
        assert SECRET.encode() not in data, f"the API key is stored in {path}"
        assert WRONG_KEY.encode() not in data, f"the wrong API key is stored in {path}"
