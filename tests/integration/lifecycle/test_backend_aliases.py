"""A flow written for IBM runs unchanged on a device served under IBM's name, a private job's too."""

from __future__ import annotations

from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import (
    aread_job_result,
    await_for_job,
    fetch_job_result,
    submit_sampler_job,
)
from tests.conftest import EmulatorFactory

from .conftest import FAST_POLL, OPTIONS, assert_bell, counts_of


async def test_a_flow_naming_ibms_device_runs_on_its_alias(
    make_emulator: EmulatorFactory, bell_isa: QuantumCircuit
) -> None:
    # "ibm_brisbane" served by the 5-qubit fake the circuit was transpiled for.
    emulator = make_emulator(backends=("ibm_brisbane=manila",))

    @flow
    async def on_ibm_brisbane() -> list[dict[str, int]]:
        jobs = [
            submit_sampler_job([bell_isa], backend="ibm_brisbane", options=options)
            for options in (OPTIONS, {**OPTIONS, "environment": {"private": True}})
        ]
        for job in jobs:
            await await_for_job(job, poll=FAST_POLL)
        return [counts_of(fetch_job_result(job)) for job in jobs]

    for counts in await on_ibm_brisbane():
        assert_bell(counts)
    jobs = emulator.jobs()
    assert [(j["backend"], j["status"]) for j in jobs] == [("ibm_brisbane", "Completed")] * 2
    # The private job's result was read once, from IBM, and is kept in Prefect's result storage.
    assert_bell(counts_of(await aread_job_result(jobs[1]["id"])))
