"""A reaper pass goes on through a listing IBM refuses for now (429), as every layer must."""

from __future__ import annotations

from prefect import flow
from qiskit import QuantumCircuit

from prefect_qiskit_jobs import asubmit_sampler_job
from prefect_qiskit_jobs.cancel.reaper import reap_orphaned_jobs
from prefect_qiskit_jobs.emulator import FaultRule, RunningEmulator

from .conftest import OPTIONS, SMALL_BACKEND

LISTING_ROUTE = "GET /jobs"


class LeftBehind(RuntimeError):
    """The run fails with its job queued and no hook: only a reaper cancels it."""


async def test_a_reap_sends_a_refused_listing_again_and_cancels_the_job(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    async def left_behind() -> None:
        await asubmit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS)
        raise LeftBehind("no hook: a reaper must find this")

    await left_behind(return_state=True)
    [job] = held.jobs()
    # Both listings of a pass (every pending job, then the run's own) are refused once.
    held.set_faults(FaultRule(route=LISTING_ROUTE, rate_limit_no_header=1.0, limit=2))

    reaped = await reap_orphaned_jobs(include_failed=True, grace_seconds=0)

    assert reaped == [job["id"]]
    assert held.stats()["faults"][LISTING_ROUTE] == {"rate_limit_no_header": 2}
    assert held.job(job["id"])["status"] == "Cancelled"
