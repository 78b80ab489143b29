"""What the client reads about a job beside its result: metrics, logs, tags, and deleting it."""

from __future__ import annotations

import pytest
from dateutil.parser import isoparse
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_for, http, iam_token, runtime_headers


def test_queued_jobs_report_their_position_and_estimated_start(held: RunningEmulator) -> None:
    service = QiskitRuntimeService()
    manila, nairobi = service.backend(SMALL_BACKEND), service.backend("ibm_nairobi")
    circuit = bell_for(manila)
    jobs = [SamplerV2(mode=manila).run([circuit], shots=20) for _ in range(3)]
    elsewhere = SamplerV2(mode=nairobi).run([bell_for(nairobi)], shots=20)

    metrics = [job.metrics() for job in jobs]

    assert [m["position_in_queue"] for m in metrics] == [1, 2, 3]
    assert elsewhere.metrics()["position_in_queue"] == 1  # each backend has its own queue
    assert [j["position_in_queue"] for j in held.jobs()] == [1, 2, 3, 1]
    starts = [isoparse(m["estimated_start_time"]) for m in metrics]
    assert starts == sorted(starts)
    created = [isoparse(m["timestamps"]["created"]) for m in metrics]
    assert all(start >= made for start, made in zip(starts, created, strict=True))
    assert {m["usage"]["status"] for m in metrics} == {"pending"}
    assert {m["timestamps"]["running"] for m in metrics} == {None}

    jobs[0].cancel()
    assert [job.metrics()["position_in_queue"] for job in jobs[1:]] == [1, 2]


def test_finished_job_metrics_have_ordered_timestamps_and_final_usage(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=20)
    job.result()

    metrics = job.metrics()

    stamps = metrics["timestamps"]
    assert isoparse(stamps["created"]) <= isoparse(stamps["running"]) <= isoparse(stamps["finished"])
    assert metrics["position_in_queue"] is None
    assert metrics["estimated_start_time"] is None
    assert metrics["usage"]["status"] == "complete"
    assert metrics["usage"]["qpu_charge_time_seconds"] > 0
    assert job.usage() == metrics["usage"]["qpu_charge_time_seconds"]
    assert job.creation_date == isoparse(stamps["created"])


def test_logs_tell_the_jobs_story(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=20)
    job.result()

    logs = job.logs()

    assert job.job_id() in logs
    assert "queued on ibmq_manila" in logs
    assert "started" in logs
    assert "Completed" in logs


def test_update_tags_replaces_the_tags(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    backend = service.backend(SMALL_BACKEND)
    sampler = SamplerV2(mode=backend)
    sampler.options.environment.job_tags = ["first"]
    job = sampler.run([bell_for(backend)], shots=20)
    other = SamplerV2(mode=backend).run([bell_for(backend)], shots=20)

    assert sorted(job.update_tags(["experiment-7", "calibrated"])) == ["calibrated", "experiment-7"]

    assert sorted(emulator.job(job.job_id())["tags"]) == ["calibrated", "experiment-7"]
    assert sorted(service.job(job.job_id()).tags) == ["calibrated", "experiment-7"]
    assert [j.job_id() for j in service.jobs(job_tags=["experiment-7"])] == [job.job_id()]
    assert service.jobs(job_tags=["first"]) == []
    assert emulator.job(other.job_id())["tags"] == []
    bad = http().put(
        f"{emulator.runtime_url}/jobs/{job.job_id()}/tags",
        json={"tags": "not-a-list"},
        headers=runtime_headers(emulator, iam_token(emulator)),
        timeout=30,
    )
    assert bad.status_code == 400
    assert sorted(emulator.job(job.job_id())["tags"]) == ["calibrated", "experiment-7"]


def test_deleting_a_job_forgets_it(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    backend = service.backend(SMALL_BACKEND)
    kept = SamplerV2(mode=backend).run([bell_for(backend)], shots=20)
    doomed = SamplerV2(mode=backend).run([bell_for(backend)], shots=20)
    doomed.result()

    service.delete_job(doomed.job_id())

    with pytest.raises(RuntimeJobNotFound):
        service.job(doomed.job_id())
    with pytest.raises(RuntimeJobNotFound):
        service.delete_job(doomed.job_id())
    assert [j["id"] for j in emulator.jobs()] == [kept.job_id()]
    assert [j.job_id() for j in service.jobs(limit=None)] == [kept.job_id()]


def test_an_overridden_status_is_what_the_job_routes_answer_until_cleared(held: RunningEmulator) -> None:
    service = QiskitRuntimeService()
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend).run([bell_for(backend)], shots=20)
    headers = runtime_headers(held, iam_token(held))

    def answered() -> tuple[str, str, list[str]]:
        one = http().get(f"{held.runtime_url}/jobs/{job.job_id()}", headers=headers, timeout=30).json()
        listed = (
            http()
            .get(f"{held.runtime_url}/jobs", params={"pending": "true"}, headers=headers, timeout=30)
            .json()
        )
        return one["state"]["status"], one["status"], [j["state"]["status"] for j in listed["jobs"]]

    held.override_status(job.job_id(), "Paused")

    # Listings still filter on the job's real state: it is pending, and answered as Paused.
    assert answered() == ("Paused", "Paused", ["Paused"])
    assert (held.job(job.job_id())["status"], held.job(job.job_id())["wire_status"]) == ("Queued", "Paused")
    refused = http().put(f"{held.url}/_emulator/jobs/{job.job_id()}/status", json={"status": ""}, timeout=30)
    assert refused.status_code == 400

    held.override_status(job.job_id(), None)

    assert answered() == ("Queued", "Queued", ["Queued"])
