"""A status IBM adds after this package was written is waited through, not taken as an error."""

from __future__ import annotations

import asyncio
import logging

from qiskit import QuantumCircuit

from prefect_qiskit_jobs import IBMQuantumCredentials, JobRef, JobSnapshot, JobStatus, Primitive
from prefect_qiskit_jobs.emulator import RunningEmulator
from prefect_qiskit_jobs.ibm.gateway import gateway_for
from prefect_qiskit_jobs.wait.display import WaitMonitor
from prefect_qiskit_jobs.wait.sensor import await_jobs

from .conftest import FAST_POLL, OPTIONS, SMALL_BACKEND

NEW_STATUS = "Paused"


class RecordingMonitor(WaitMonitor):
    """A wait's monitor that keeps every snapshot it is shown, and is set once one is not final."""

    def __init__(self, jobs: list[JobRef]) -> None:
        super().__init__(jobs, logging.getLogger(__name__), None, None)
        self.shown: list[JobSnapshot] = []
        self.saw_pending = asyncio.Event()

    async def observe(self, snapshot: JobSnapshot) -> None:
        await super().observe(snapshot)
        self.shown.append(snapshot)
        if not snapshot.status.is_final:
            self.saw_pending.set()


async def test_a_job_in_a_status_ibm_added_since_is_awaited_until_it_completes(
    held: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    credentials = IBMQuantumCredentials.for_emulator(held)
    gateway = gateway_for(credentials)
    job = await asyncio.to_thread(gateway.submit, Primitive.SAMPLER, [bell_isa], SMALL_BACKEND, OPTIONS, [])
    held.override_status(job.job_id, NEW_STATUS)
    monitor = RecordingMonitor([job])

    waiting = asyncio.ensure_future(
        await_jobs([job], credentials=credentials, poll=FAST_POLL, monitor=monitor)
    )
    saw_pending = asyncio.ensure_future(monitor.saw_pending.wait())
    done, _ = await asyncio.wait({waiting, saw_pending}, return_when=asyncio.FIRST_COMPLETED)
    saw_pending.cancel()
    if waiting in done:
        waiting.result()  # the wait ended while the job sat in the new status: raise what ended it
    # The wait goes on through the new status; IBM then answers its known ones, up to Completed.
    held.override_status(job.job_id, None)
    held.release(job.job_id)
    [final] = await waiting

    assert final.status is JobStatus.DONE
    first = monitor.shown[0]
    assert (first.status, first.unrecognised_status) == (JobStatus.UNKNOWN, NEW_STATUS)
    assert first.describe() == f"UNKNOWN (IBM says {NEW_STATUS!r})"
    assert monitor.shown[-1].status is JobStatus.DONE
    assert held.job(job.job_id)["status"] == "Completed"
