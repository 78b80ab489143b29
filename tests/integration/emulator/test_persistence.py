"""With a database file, jobs, results and sessions survive an emulator restart on the same port.

A flow that polls across an IBM outage keeps its client: the tokens it already holds must still
be accepted after the restart, and a job still queued when the emulator went down runs after it.
"""

from __future__ import annotations

from pathlib import Path

from qiskit_ibm_runtime import Batch, QiskitRuntimeService, SamplerV2

from .conftest import HELD_QUEUE_DELAY, SMALL_BACKEND, EmulatorFactory, bell_for


def test_jobs_results_and_sessions_survive_a_restart(make_emulator: EmulatorFactory, tmp_path: Path) -> None:
    emulator = make_emulator(database=tmp_path / "iqp.db", queue_delay=HELD_QUEUE_DELAY)
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend)
    batch = Batch(backend=backend)
    sampler = SamplerV2(mode=batch)
    sampler.options.environment.job_tags = ["before-restart"]
    done = sampler.run([circuit], shots=200)
    queued = sampler.run([circuit], shots=100)
    emulator.release(done.job_id())
    counts = done.result()[0].data.meas.get_counts()
    before = {job["id"]: job for job in emulator.jobs()}
    port = emulator.port

    emulator.restart()

    assert emulator.port == port
    assert {job["id"]: job for job in emulator.jobs()} == before
    fresh = QiskitRuntimeService()
    retrieved = fresh.job(done.job_id())
    assert retrieved.status() == "DONE"
    assert retrieved.result()[0].data.meas.get_counts() == counts
    assert retrieved.session_id == batch.session_id
    assert retrieved.tags == ["before-restart"]
    assert fresh.job(queued.job_id()).status() == "QUEUED"
    details = Batch.from_id(batch.session_id, fresh).details()
    assert details is not None
    assert (details["mode"], details["backend_name"], details["state"]) == ("batch", SMALL_BACKEND, "active")
    listed = fresh.jobs(limit=None, session_id=batch.session_id)
    assert sorted(job.job_id() for job in listed) == sorted([done.job_id(), queued.job_id()])

    emulator.release(queued.job_id())
    # the client from before the restart still holds a token the restarted emulator accepts
    assert queued.result()[0].data.meas.num_shots == 100
    assert emulator.job(queued.job_id())["status"] == "Completed"
