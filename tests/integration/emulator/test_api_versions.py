"""``IBM-API-Version``: the client's version and the older one other tools send are both served.

Plain HTTP (httpx), as a tool with its own client would speak. A version IBM does not serve, or
none at all, is refused: the harsher reading of what IBM leaves unsaid.
"""

from __future__ import annotations

import httpx
import pytest

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, iam_token

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
