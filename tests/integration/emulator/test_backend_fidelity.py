"""Backends as IBM serves them, through the real client: list fields, stable calibrations, calibration ids.

And private jobs: their inputs are never returned and their result is served once.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from qiskit.providers.exceptions import QiskitBackendNotFoundError
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import (
    SMALL_BACKEND,
    EmulatorFactory,
    bell_for,
    http,
    iam_token,
    post_job,
    runtime_headers,
    sampler_body,
)


def test_list_entries_carry_the_physical_qubit_count(service: QiskitRuntimeService) -> None:
    # Heron counts its couplers and reset qubits too; for a Falcon only its qubits are known.
    assert service.backend("ibm_kingston").physical_qubits == 332
    assert service.backend(SMALL_BACKEND).physical_qubits == 5


def test_properties_keep_their_date_until_a_recalibration(
    service: QiskitRuntimeService, emulator: RunningEmulator
) -> None:
    backend = service.backend(SMALL_BACKEND)
    first = backend.properties(refresh=True).last_update_date
    second = backend.properties(refresh=True).last_update_date
    assert first == second

    emulator.recalibrate(SMALL_BACKEND)
    assert backend.properties(refresh=True).last_update_date > first


def test_properties_as_of_a_time_are_the_last_calibration_taken_before_it(
    service: QiskitRuntimeService, emulator: RunningEmulator
) -> None:
    backend = service.backend(SMALL_BACKEND)
    first = datetime.fromisoformat(emulator.calibration(SMALL_BACKEND)["last_update_date"])
    emulator.recalibrate(SMALL_BACKEND)
    second = datetime.fromisoformat(emulator.calibration(SMALL_BACKEND)["last_update_date"])

    def as_of(moment: datetime) -> datetime | None:
        properties = backend.properties(datetime=moment)
        return None if properties is None else properties.last_update_date

    assert as_of(second + timedelta(seconds=1)) == second
    assert as_of(second) == first  # strictly before
    assert as_of(first + (second - first) / 2) == first
    # Before any calibration IBM has no properties: an empty answer, which the client gives as None.
    assert as_of(first - timedelta(days=1)) is None
    assert as_of(datetime(2020, 1, 1, tzinfo=timezone.utc)) is None
    url = f"{emulator.runtime_url}/backends/{SMALL_BACKEND}/properties"
    headers = runtime_headers(emulator, iam_token(emulator))
    malformed = http().get(url, params={"updated_before": "yesterday"}, headers=headers, timeout=30)
    assert malformed.status_code == 400


def test_an_unknown_calibration_id_is_an_error(
    service: QiskitRuntimeService, emulator: RunningEmulator
) -> None:
    with pytest.raises(QiskitBackendNotFoundError):
        service.backend(SMALL_BACKEND, calibration_id="no-such-calibration")
    headers = runtime_headers(emulator, iam_token(emulator))
    url = f"{emulator.runtime_url}/backends/{SMALL_BACKEND}/properties"
    answer = http().get(url, params={"calibration_id": "no-such-calibration"}, headers=headers, timeout=30)
    assert answer.status_code == 404
    assert "no-such-calibration" in answer.json()["errors"][0]["message"]
    job = post_job(emulator, sampler_body(SMALL_BACKEND, [], calibration_id="no-such-calibration"))
    assert job.status_code == 400
    assert emulator.jobs() == []

    # The device's own calibration id is served, with its date.
    calibration = emulator.calibration(SMALL_BACKEND)
    backend = service.backend(SMALL_BACKEND, calibration_id=calibration["calibration_id"])
    assert backend.properties().last_update_date.isoformat() == calibration["last_update_date"]


def test_a_private_job_hides_its_params_and_serves_its_result_once(
    service: QiskitRuntimeService, emulator: RunningEmulator
) -> None:
    backend = service.backend(SMALL_BACKEND)
    sampler = SamplerV2(mode=backend, options={"default_shots": 100, "environment": {"private": True}})
    job = sampler.run([bell_for(backend)])

    assert sum(job.result()[0].data.meas.get_counts().values()) == 100
    again = service.job(job.job_id())
    assert again.private
    assert again.inputs == {}
    headers = runtime_headers(emulator, iam_token(emulator))
    listing = http().get(f"{emulator.runtime_url}/jobs", headers=headers, timeout=30).json()["jobs"]
    assert [j["id"] for j in listing] == [job.job_id()]
    assert "params" not in listing[0]
    # Read without exclude_params, as no client method does: still no params.
    raw = http().get(f"{emulator.runtime_url}/jobs/{job.job_id()}", headers=headers, timeout=30).json()
    assert "params" not in raw
    # IBM answers a second read with an empty body, and the client's result() gives None.
    assert job.result() is None
    second = http().get(f"{emulator.runtime_url}/jobs/{job.job_id()}/results", headers=headers, timeout=30)
    assert (second.status_code, second.text) == (200, "")


def test_a_private_job_s_params_are_deleted_once_it_ends(
    make_emulator: EmulatorFactory, tmp_path: Path
) -> None:
    database = tmp_path / "iqp.db"
    make_emulator(database=database)
    backend = QiskitRuntimeService().backend(SMALL_BACKEND)
    private = SamplerV2(mode=backend, options={"default_shots": 10, "environment": {"private": True}})
    public = SamplerV2(mode=backend, options={"default_shots": 10})
    kept, dropped = public.run([bell_for(backend)]), private.run([bell_for(backend)])
    kept.result()
    dropped.result()

    # What the emulator keeps is what its database holds: the private job's inputs are gone.
    with closing(sqlite3.connect(database)) as db:
        docs = {job_id: json.loads(doc) for job_id, doc in db.execute("SELECT id, doc FROM jobs")}
    assert docs[dropped.job_id()]["params"] is None
    assert "pubs" in json.loads(docs[kept.job_id()]["params"])


def test_a_job_that_is_not_private_shows_its_params_and_serves_its_result_again(
    service: QiskitRuntimeService,
) -> None:
    backend = service.backend(SMALL_BACKEND)
    job = SamplerV2(mode=backend, options={"default_shots": 100}).run([bell_for(backend)])

    assert job.result()[0].data.meas.num_shots == job.result()[0].data.meas.num_shots == 100
    assert set(service.job(job.job_id()).inputs) >= {"pubs"}
