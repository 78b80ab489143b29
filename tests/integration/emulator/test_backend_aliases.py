"""Devices served under any name: the same fake twice, each name the same everywhere the client looks."""

from __future__ import annotations

from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2

from tests.conftest import EmulatorFactory

from .conftest import bell_for, http, iam_token, runtime_headers


def test_one_fake_served_under_two_names_answers_under_each(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(backends=("ibm_lab=manila", "ibm_lab_2=ibmq_manila"))
    service = QiskitRuntimeService()

    assert sorted(b.name for b in service.backends()) == ["ibm_lab", "ibm_lab_2"]
    backend = service.backend("ibm_lab_2")
    assert backend.configuration().backend_name == "ibm_lab_2"
    assert backend.status().backend_name == "ibm_lab_2"
    assert backend.num_qubits == 5
    headers = runtime_headers(emulator, iam_token(emulator))
    properties = http().get(
        f"{emulator.runtime_url}/backends/ibm_lab/properties", headers=headers, timeout=30
    )
    assert properties.json()["backend_name"] == "ibm_lab"
    search = http().post(
        emulator.environment()["GLOBAL_SEARCH_URL"] + "/v3/resources/search",
        json={"query": "service_name:quantum-computing"},
        headers={"Authorization": headers["Authorization"]},
        timeout=30,
    )
    assert search.json()["items"][0]["doc"]["extensions"]["backends"] == ["ibm_lab", "ibm_lab_2"]

    job = SamplerV2(mode=backend, options={"default_shots": 100}).run([bell_for(backend)])
    assert sum(job.result()[0].data.meas.get_counts().values()) == 100
    assert service.job(job.job_id()).backend().name == "ibm_lab_2"
    assert [(j["backend"], j["status"]) for j in emulator.jobs()] == [("ibm_lab_2", "Completed")]
