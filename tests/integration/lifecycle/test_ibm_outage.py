"""IBM unreachable during a wait: the wait goes on, shows since when, and ends with the right result.

The emulator is stopped while a wait follows a queued job, then started again on the same port and
database, as IBM comes back with its jobs. Meanwhile the run's job board says "IBM Quantum
unreachable since ...", and the run log says so once; once IBM answers, the board clears, the log
says how long it lasted, and the job's result is Bell's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import JobStatus, asubmit_sampler_job, await_for_job, fetch_job_result
from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator
from prefect_qiskit_jobs.wait.display import UNREACHABLE, artifact_key

from .conftest import (
    FAST_POLL,
    HELD_QUEUE_DELAY,
    OPTIONS,
    SMALL_BACKEND,
    artifacts,
    assert_bell,
    current_flow_run_id,
    point_environment_at,
    run_log_event,
    run_logs,
)


@pytest.fixture
def restartable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningEmulator]:
    """An emulator with its own database, holding jobs queued until released."""
    config = EmulatorConfig(queue_delay=HELD_QUEUE_DELAY, database=tmp_path / "iqp.db", backends=("manila",))
    with start_emulator(config) as emulator:
        yield point_environment_at(emulator, monkeypatch)


async def board_reasons(flow_run_id: str) -> list[str]:
    """The reasons on the run's job board as the Prefect API holds it (none before it is written)."""
    found = await artifacts(key=artifact_key("qiskit-jobs", flow_run_id))
    if not found:
        return []
    data: Any = found[0].data
    rows = json.loads(data) if isinstance(data, str) else data
    return [str(row.get("reason", "")) for row in rows]


async def test_a_wait_goes_on_through_an_ibm_outage_and_shows_it(
    restartable: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    seen_on_board: list[str] = []

    @flow
    async def through_an_outage() -> dict[str, Any]:
        job = await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        run_id = current_flow_run_id()
        with run_log_event(r"is QUEUED") as queued, run_log_event(UNREACHABLE) as unreachable:
            wait = asyncio.create_task(await_for_job(job, poll=FAST_POLL))
            await queued.wait()
            await anyio.to_thread.run_sync(restartable.stop)
            await unreachable.wait()

            async def shown() -> bool:
                seen_on_board[:] = await board_reasons(run_id)
                return any(reason.startswith(UNREACHABLE) for reason in seen_on_board)

            while not await shown():  # noqa: ASYNC110 (the board is written every few seconds, no event)
                await asyncio.sleep(0.2)
            await anyio.to_thread.run_sync(restartable.start)
            restartable.release(job.job_id)
            final = await wait
        counts = fetch_job_result(job)[0].data.meas.get_counts()
        return {"final": final, "counts": counts, "run_id": run_id}

    out = await asyncio.wait_for(through_an_outage(), 300)

    assert out["final"].status is JobStatus.DONE
    assert_bell(out["counts"])
    assert [reason for reason in seen_on_board if reason.startswith(f"{UNREACHABLE} since ")], seen_on_board
    assert await board_reasons(out["run_id"]) == [""]
    logs = await run_logs(out["run_id"])
    assert len([line for line in logs if line.startswith(f"{UNREACHABLE} since ")]) == 1, logs
    assert any(line.startswith("IBM Quantum answers again, after ") for line in logs), logs


async def test_a_submit_made_while_ibm_is_down_is_retried_until_it_is_back_and_creates_one_job(
    restartable: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    await anyio.to_thread.run_sync(restartable.stop)

    @flow
    async def submit_during_an_outage() -> str:
        with run_log_event(r"Retry 1/6 will start") as retrying:
            submit = asyncio.create_task(
                asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
            )
            await retrying.wait()
            await anyio.to_thread.run_sync(restartable.start)
            job = await submit
        return job.job_id

    job_id = await asyncio.wait_for(submit_during_an_outage(), 300)

    assert [job["id"] for job in restartable.jobs()] == [job_id]
