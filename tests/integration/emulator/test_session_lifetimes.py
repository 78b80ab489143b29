"""Sessions end as IBM ends them: at their maximum TTL, and a dedicated one idles into inactivity.

IBM's documentation: when a session's maximum TTL is reached "the session is terminated, any jobs
that are already running continue running, and any queued jobs that remain in the session are put
into a failed state". A dedicated session with no job for its interactive TTL is deactivated
until its next job arrives. The TTL clock starts when the session is created (the harsher reading:
a session whose jobs never start still ends).
"""

from __future__ import annotations

import pytest
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2, Session
from qiskit_ibm_runtime.exceptions import IBMRuntimeError, RuntimeJobFailureError

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, EmulatorFactory, bell_for, eventually, http, iam_token, runtime_headers

OUTLIVED_SESSION_SECONDS = 5


def test_a_queued_job_fails_when_its_session_reaches_its_max_ttl(held: RunningEmulator) -> None:
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend)
    session = Session(backend=backend, max_time=2)
    job = SamplerV2(mode=session).run([circuit], shots=20)

    record = eventually(lambda: held.job(job.job_id()), lambda r: r["status"] != "Queued")

    assert record["status"] == "Failed"
    assert session.session_id in record["reason"]
    assert "maximum TTL of 2 s" in record["reason"]
    assert job.status() == "ERROR"
    with pytest.raises(RuntimeJobFailureError, match="maximum TTL"):
        job.result()
    details = session.details()
    assert details is not None
    assert details["state"] == "closed"
    assert details["accepting_jobs"] is False
    with pytest.raises(IBMRuntimeError, match="accepts no jobs"):
        SamplerV2(mode=session).run([circuit], shots=20)


def test_a_job_running_when_its_session_ends_runs_on(make_emulator: EmulatorFactory) -> None:
    # The session lives 5 s from its creation and the job runs 10 s: the client has 5 s to create
    # the job in the session (on a loaded 2-core runner it once took more than 1 s), and the job
    # is still running when the session ends, whenever it started.
    emulator = make_emulator(concurrency=1, min_run_seconds=2 * OUTLIVED_SESSION_SECONDS)
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    session = Session(backend=backend, max_time=OUTLIVED_SESSION_SECONDS)
    job = SamplerV2(mode=session).run([bell_for(backend)], shots=20)
    eventually(lambda: emulator.job(job.job_id())["status"], lambda status: status == "Running")

    eventually(session.details, lambda details: details["state"] == "closed")

    assert emulator.job(job.job_id())["status"] == "Running"
    assert job.result()[0].data.meas.num_shots == 20
    assert emulator.job(job.job_id())["status"] == "Completed"


def test_a_dedicated_session_idle_for_its_interactive_ttl_goes_inactive_until_its_next_job(
    make_emulator: EmulatorFactory,
) -> None:
    make_emulator(session_interactive_ttl=1)
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend)
    session = Session(backend=backend)
    sampler = SamplerV2(mode=session)
    sampler.run([circuit], shots=20).result()

    details = eventually(session.details, lambda details: details["state"] == "inactive")

    assert details["interactive_timeout"] == 1
    assert details["accepting_jobs"] is True
    assert sampler.run([circuit], shots=20).result()[0].data.meas.num_shots == 20
    again = session.details()
    assert again is not None
    assert again["state"] == "active"
    assert [stamp["status"] for stamp in again["timestamps"]] == ["open", "active", "inactive", "active"]
    session.cancel()


def test_a_session_longer_than_the_maximum_ttl_is_refused(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(session_max_ttl=600)
    response = http().post(
        emulator.environment()["QISKIT_IBM_URL"] + "/sessions",
        json={"mode": "batch", "backend": SMALL_BACKEND, "max_ttl": 601},
        headers=runtime_headers(emulator, iam_token(emulator)),
        timeout=30,
    )

    assert response.status_code == 400
    assert "600" in response.json()["errors"][0]["message"]
