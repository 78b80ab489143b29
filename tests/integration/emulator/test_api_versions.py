"""``IBM-API-Version``: the client's version and the older one other tools send are both served.

Plain HTTP (httpx), as a tool with its own client would speak. A version IBM does not serve, or
none at all, is refused: the harsher reading of what IBM leaves unsaid.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from qiskit_ibm_runtime import QiskitRuntimeService, RuntimeEncoder

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_for, http, iam_token, sampler_body

CLIENT_VERSION = "2026-04-15"  # qiskit-ibm-runtime 0.51
OLDER_VERSION = "2025-01-01"  # prefect-qiskit 0.2.1's own aiohttp client


def _get(emulator: RunningEmulator, path: str, version: str | None) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {iam_token(emulator)}",
        "Service-CRN": emulator.config.instance_crn,
        "Accept": "application/json",
    }
    if version is not None:
        headers["IBM-API-Version"] = version
    with httpx.Client(trust_env=False, timeout=30) as client:
        return client.get(emulator.runtime_url + path, headers=headers)


@pytest.mark.parametrize("version", [CLIENT_VERSION, OLDER_VERSION])
def test_both_served_versions_answer_alike(emulator: RunningEmulator, version: str) -> None:
    backends = _get(emulator, "/backends", version)
    status = _get(emulator, f"/backends/{SMALL_BACKEND}/status", version)
    jobs = _get(emulator, "/jobs?limit=5", version)

    assert backends.status_code == status.status_code == jobs.status_code == 200
    assert SMALL_BACKEND in [device["name"] for device in backends.json()["devices"]]
    assert status.json()["status"] == "active"
    assert jobs.json()["count"] == 0


@pytest.mark.parametrize("version", ["2024-01-01", "2099-01-01", "latest", None])
def test_an_unknown_or_missing_version_is_refused(emulator: RunningEmulator, version: str | None) -> None:
    answer = _get(emulator, "/backends", version)

    assert answer.status_code == 400
    assert "IBM-API-Version" in answer.json()["errors"][0]["message"]


def test_a_job_posted_as_prefect_qiskit_posts_it_runs_and_reads_back(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    """prefect-qiskit 0.2.1's client: version 2025-01-01, the body a JSON string aiohttp declares text/plain.

    IBM accepts that body (the peer's tests replay IBM's answers to it), so the emulator does too;
    then the job, its status, metrics and result read back in the shapes the peer reads.
    """

    headers = {
        "Authorization": f"Bearer {iam_token(emulator)}",
        "Service-CRN": emulator.config.instance_crn,
        "Accept": "application/json",
        "IBM-API-Version": OLDER_VERSION,
    }
    body = sampler_body(SMALL_BACKEND, [[bell_for(service.backend(SMALL_BACKEND)), [], 16]])
    body["params"].pop("options")
    posted = http().post(
        emulator.runtime_url + "/jobs",
        data=json.dumps(body, cls=RuntimeEncoder).encode(),
        headers={**headers, "Content-Type": "text/plain; charset=utf-8"},
        timeout=60,
    )
    assert posted.status_code == 200, posted.text[:300]
    job_id = posted.json()["id"]

    def read(path: str) -> httpx.Response:
        with httpx.Client(trust_env=False, timeout=30) as client:
            return client.get(emulator.runtime_url + path, headers=headers)

    while (status := read(f"/jobs/{job_id}").json())["status"] in ("Queued", "Running"):
        time.sleep(0.1)
    metrics = read(f"/jobs/{job_id}/metrics").json()
    result = read(f"/jobs/{job_id}/results")

    assert status["status"] == "Completed"
    assert status["state"]["status"] == "Completed"
    assert set(metrics["timestamps"]) >= {"created", "running", "finished"}
    assert "quantum_seconds" in metrics["usage"]
    assert result.status_code == 200
    assert json.loads(result.text)["__type__"] == "PrimitiveResult"


def test_a_body_declared_as_form_data_is_still_refused(emulator: RunningEmulator) -> None:
    headers = {
        "Authorization": f"Bearer {iam_token(emulator)}",
        "Service-CRN": emulator.config.instance_crn,
        "IBM-API-Version": OLDER_VERSION,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    with httpx.Client(trust_env=False, timeout=30) as client:
        answer = client.post(emulator.runtime_url + "/jobs", content=b"{}", headers=headers)

    assert answer.status_code == 415
