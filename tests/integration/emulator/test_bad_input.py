"""Bad credentials and bad jobs get clear errors and create no job.

The client refuses most bad pubs itself before it POSTs (ISA, width, unbound parameters, unknown
backend): each case is shown through the client, then posted with raw HTTP the way the client
would post it, to show the emulator also answers 400 in IBM's error shape and creates nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.exceptions import QiskitError
from qiskit.providers.exceptions import QiskitBackendNotFoundError
from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.accounts.exceptions import InvalidAccountError
from qiskit_ibm_runtime.exceptions import IBMInputValueError

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import (
    SMALL_BACKEND,
    bell_circuit,
    bell_for,
    http,
    iam_token,
    post_job,
    runtime_headers,
    sampler_body,
)


def assert_ibm_error(response: Any, status: int, message_part: str) -> None:
    """``response`` is ``status`` with IBM's error body, whose message mentions ``message_part``."""
    assert response.status_code == status, response.text
    body = response.json()
    (error,) = body["errors"]
    assert message_part.lower() in error["message"].lower()
    assert isinstance(error["code"], int)
    assert error["more_info"]
    assert body["error"] == {"message": error["message"], "code": error["code"]}


def assert_no_job(emulator: RunningEmulator) -> None:
    assert emulator.jobs() == []


def test_wrong_api_key_fails_clearly_and_creates_no_job(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QISKIT_IBM_TOKEN", "not-the-emulators-key")

    with pytest.raises(InvalidAccountError, match="valid API token"):
        QiskitRuntimeService()

    assert emulator.stats()["routes"] == {"POST /iam/identity/token": 1}
    assert_no_job(emulator)
    refused = http().post(
        emulator.environment()["IAM_URL"] + "/identity/token",
        data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": "not-the-emulators-key"},
        timeout=30,
    )
    assert refused.status_code == 400
    assert refused.json()["errorMessage"] == "Provided API key could not be found."


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "apikey emulator-api-key", "Basic ZW11bGF0b3I6a2V5"],
)
def test_runtime_calls_without_a_valid_bearer_get_401(
    emulator: RunningEmulator, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    runtime = emulator.environment()["QISKIT_IBM_URL"]

    listing = http().get(runtime + "/jobs", headers=headers, timeout=30)
    created = http().post(
        runtime + "/jobs", headers=headers, json=sampler_body(SMALL_BACKEND, []), timeout=30
    )

    assert_ibm_error(listing, 401, "bearer")
    assert_ibm_error(created, 401, "bearer")
    assert_no_job(emulator)


def test_a_token_from_another_emulator_is_refused(
    emulator: RunningEmulator, held_session_emulator: RunningEmulator
) -> None:
    foreign = iam_token(held_session_emulator)
    response = http().get(
        emulator.environment()["QISKIT_IBM_URL"] + "/jobs",
        headers={"Authorization": f"Bearer {foreign}"},
        timeout=30,
    )
    assert_ibm_error(response, 401, "bearer")


def test_a_well_formed_raw_job_is_accepted(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    """The control for the raw cases below: the same request with a good pub creates a job that runs."""
    circuit = bell_for(service.backend(SMALL_BACKEND))

    response = post_job(emulator, sampler_body(SMALL_BACKEND, [(circuit, None, 64)]))

    assert response.status_code == 200, response.text
    job = service.job(response.json()["id"])
    assert job.result()[0].data.meas.num_shots == 64
    assert [j["id"] for j in emulator.jobs()] == [job.job_id()]


def test_unknown_backend(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    with pytest.raises(QiskitBackendNotFoundError, match="No backend matches"):
        SamplerV2(mode=service.backend("ibm_nowhere"))
    circuit = bell_for(service.backend(SMALL_BACKEND))

    response = post_job(emulator, sampler_body("ibm_nowhere", [(circuit, None, 64)]))

    assert_ibm_error(response, 400, "ibm_nowhere")
    assert_no_job(emulator)


def test_circuit_wider_than_the_backend(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    wide = QuantumCircuit(6)
    wide.x(5)
    wide.measure_all()
    sampler = SamplerV2(mode=service.backend(SMALL_BACKEND))

    with pytest.raises(IBMInputValueError, match="qubits"):
        sampler.run([wide])
    response = post_job(emulator, sampler_body(SMALL_BACKEND, [(wide, None, 64)]))

    assert_ibm_error(response, 400, "6 qubits but ibmq_manila has 5")
    assert_no_job(emulator)


def test_non_isa_circuit(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    raw = bell_circuit()  # H is not a native gate of manila, and nothing was laid out
    sampler = SamplerV2(mode=service.backend(SMALL_BACKEND))

    with pytest.raises(IBMInputValueError, match="not supported by the target"):
        sampler.run([raw])
    response = post_job(emulator, sampler_body(SMALL_BACKEND, [(raw, None, 64)]))

    assert_ibm_error(response, 400, "non-ISA")
    assert_no_job(emulator)


def test_unbound_parameters(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    backend = service.backend(SMALL_BACKEND)
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rz(theta, 0)
    circuit.sx(0)
    circuit.measure_all()
    sampler = SamplerV2(mode=backend)

    with pytest.raises((ValueError, QiskitError), match="parameter"):
        sampler.run([circuit])
    response = post_job(emulator, sampler_body(SMALL_BACKEND, [(circuit, None, 64)]))

    assert_ibm_error(response, 400, "1 unbound parameters (theta)")
    assert_no_job(emulator)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ({"program_id": "sampler", "backend": SMALL_BACKEND}, "params"),
        ({"backend": SMALL_BACKEND, "params": {}}, "program_id"),
        (sampler_body(SMALL_BACKEND, []), "non-empty list of pubs"),
        (sampler_body(SMALL_BACKEND, [["not a circuit"]]), "quantum circuit"),
        (
            sampler_body(SMALL_BACKEND, [[{"__type__": "QuantumCircuit", "__value__": "garbage"}]]),
            "could not be decoded",
        ),
        ({**sampler_body(SMALL_BACKEND, []), "tags": "not-a-list"}, "tags"),
    ],
    ids=["not-json", "not-object", "no-params", "no-program", "no-pubs", "no-circuit", "bad-qpy", "bad-tags"],
)
def test_malformed_body(emulator: RunningEmulator, body: dict[str, Any] | str, message: str) -> None:
    response = post_job(emulator, body)

    assert_ibm_error(response, 400, message)
    assert_no_job(emulator)


def test_bad_shots(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    circuit = bell_for(service.backend(SMALL_BACKEND))

    response = post_job(emulator, sampler_body(SMALL_BACKEND, [(circuit, None, 0)]))

    assert_ibm_error(response, 400, "shots")
    assert_no_job(emulator)


def test_unknown_program_is_not_found(emulator: RunningEmulator, service: QiskitRuntimeService) -> None:
    circuit = bell_for(service.backend(SMALL_BACKEND))
    body = {**sampler_body(SMALL_BACKEND, [(circuit, None, 64)]), "program_id": "circuit-runner"}

    response = post_job(emulator, body)

    assert_ibm_error(response, 404, "circuit-runner")
    assert_no_job(emulator)


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "/jobs", {**sampler_body(SMALL_BACKEND, []), "session_id": ["x"]}, "session_id"),
        ("POST", "/sessions", [1], "JSON object"),
        ("POST", "/sessions", {"mode": "batch", "backend": SMALL_BACKEND, "max_ttl": "long"}, "max_ttl"),
        ("POST", "/sessions", {"mode": "exclusive", "backend": SMALL_BACKEND}, "mode"),
        ("GET", "/jobs?created_after=yesterday", None, "created_after"),
        ("GET", "/jobs?limit=0", None, "limit"),
    ],
    ids=[
        "job-session-id",
        "session-not-object",
        "session-ttl",
        "session-mode",
        "listing-date",
        "listing-limit",
    ],
)
def test_other_malformed_requests_get_400(
    emulator: RunningEmulator, method: str, path: str, body: Any, message: str
) -> None:
    response = http().request(
        method,
        emulator.runtime_url + path,
        json=body,
        headers=runtime_headers(emulator, iam_token(emulator)),
        timeout=30,
    )

    assert_ibm_error(response, 400, message)
    assert_no_job(emulator)
