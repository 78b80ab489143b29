"""A bare ``QiskitRuntimeService()`` reaches the emulator through IAM, Global Search and Catalog.

Without a reachable IAM the client warns and falls back to sending the API key, and every request
then waits about a minute: the connection must use the emulator's IAM token route instead.
"""

from __future__ import annotations

import warnings

from qiskit_ibm_runtime import QiskitRuntimeService

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND


def test_bare_service_connects_through_the_emulators_iam(emulator: RunningEmulator) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        service = QiskitRuntimeService()
        names = {backend.name for backend in service.backends()}

    assert not [w for w in caught if "Unable to retrieve IBM Cloud access token" in str(w.message)]
    assert names == {
        *("ibmq_manila", "ibm_nairobi", "ibm_brisbane", "ibm_torino"),
        *("ibm_fez", "ibm_marrakesh", "ibm_kingston", "ibm_boston", "ibm_pittsburgh"),
    }
    assert service.active_instance() == emulator.config.instance_crn
    routes = emulator.stats()["routes"]
    assert routes["POST /iam/identity/token"] >= 1
    assert routes["POST /global-search/v3/resources/search"] == 1
    assert routes["GET /global-catalog/{plan_id}"] == 1


def test_backend_exposes_the_fake_devices_target(emulator: RunningEmulator) -> None:
    backend = QiskitRuntimeService().backend(SMALL_BACKEND)

    assert backend.num_qubits == 5
    assert {"cx", "rz", "sx", "x", "measure"} <= set(backend.target.operation_names)
    assert backend.status().operational
    routes = emulator.stats()["routes"]
    assert routes["GET /backends/{name}/configuration"] >= 1
    assert routes["GET /backends/{name}/properties"] >= 1
