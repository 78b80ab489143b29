"""Mock twins of the devices and dry runs on them, as IBM serves them since client 0.50.

Each device has a ``mock_`` twin (``ibm_brisbane``: ``mock_brisbane``) with the device's
configuration and properties, listed only to a client that asks for mocks. ``run(dry_run=True)``
posts to the twin, which answers random data in the shape of a real result: not a simulation.
Job listings leave dry-run jobs out unless asked for them.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2, QiskitRuntimeService, SamplerV2
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.executor_sampler import Sampler

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_for, http, iam_token, runtime_headers

pytestmark = pytest.mark.filterwarnings(
    "ignore:The (Sampler|Estimator)V2 class is deprecated:DeprecationWarning"
)

MOCK = "mock_manila"


def test_mock_twins_are_listed_only_when_asked_for(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    devices = {backend.name for backend in service.backends()}
    everything = {backend.name: backend for backend in service.backends(include_mocks=True)}

    assert not any(name.startswith("mock_") for name in devices)
    assert {"mock_manila", "mock_brisbane", "mock_nairobi", "mock_fez"} <= set(everything)
    assert set(everything) == devices | {"mock_" + name.split("_", 1)[1] for name in devices}
    assert everything[MOCK].is_mock
    assert not everything[SMALL_BACKEND].is_mock


def test_a_mock_twin_has_its_devices_configuration_properties_and_an_active_status(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    device, mock = service.backend(SMALL_BACKEND), service.backend(MOCK)

    assert mock.name == MOCK
    assert mock.num_qubits == device.num_qubits
    assert mock.coupling_map.get_edges() == device.coupling_map.get_edges()
    assert mock.properties().qubits == device.properties().qubits
    assert mock.status().status_msg == "active"
    assert mock.status().operational


def test_a_sampler_dry_run_answers_random_bits_of_the_right_shape(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend)

    job = SamplerV2(mode=backend).run([(circuit, None, 300)], dry_run=True)
    result = job.result()

    assert job.backend().name == MOCK
    bits = result[0].data.meas
    assert bits.num_shots == 300
    assert bits.num_bits == 2
    # A Bell pair never reads 01 or 10; random data does.
    assert set(bits.get_counts()) == {"00", "01", "10", "11"}
    assert emulator.job(job.job_id())["backend"] == MOCK


def test_an_estimator_dry_run_answers_random_values_with_ibms_metadata(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend, measure=False)
    zz = SparsePauliOp("ZZ").apply_layout(circuit.layout)

    result = EstimatorV2(mode=backend).run([(circuit, [zz, zz, zz])], dry_run=True).result()

    evs = result[0].data.evs
    assert evs.shape == (3,)
    assert result[0].data.stds.shape == (3,)
    assert np.all(np.abs(evs) <= 1.0)
    assert len(set(evs.tolist())) == 3  # the same observable thrice: random, not estimated
    assert result[0].metadata["shots"] == 4096
    assert result.metadata["twirling"]["enable_measure"] is True


@pytest.mark.parametrize("primitive", ["sampler", "estimator"])
def test_an_executor_dry_run_decodes_into_a_primitive_result(
    emulator: RunningEmulator, service: QiskitRuntimeService, primitive: str
) -> None:
    backend = service.backend(SMALL_BACKEND)
    if primitive == "sampler":
        job = Sampler(mode=backend).run([bell_for(backend)], shots=64, dry_run=True)
        assert job.result()[0].data.meas.num_shots == 64
    else:
        circuit = bell_for(backend, measure=False)
        observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
        job = Estimator(mode=backend).run([(circuit, [observable, observable])], precision=0.1, dry_run=True)
        assert job.result()[0].data.evs.shape == (2,)
    assert job.backend().name == MOCK


def test_listings_leave_dry_runs_out_unless_asked_for(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend)
    real = SamplerV2(mode=backend).run([circuit], shots=10)
    dry = SamplerV2(mode=backend).run([circuit], shots=10, dry_run=True)
    real.result(), dry.result()

    assert [job.job_id() for job in service.jobs()] == [real.job_id()]
    assert [job.job_id() for job in service.jobs(backend_name=MOCK)] == []
    assert [job.job_id() for job in service.jobs(include_mocks=True)] == [dry.job_id(), real.job_id()]
    assert service.job(dry.job_id()).backend().name == MOCK


def test_the_backend_list_without_include_mocks_has_no_mock(emulator: RunningEmulator) -> None:
    url = emulator.environment()["QISKIT_IBM_URL"] + "/backends"
    headers = runtime_headers(emulator, iam_token(emulator))

    plain = http().get(url, headers=headers, timeout=30).json()["devices"]
    with_mocks = (
        http().get(url, params={"include_mocks": "True"}, headers=headers, timeout=30).json()["devices"]
    )

    assert all(entry.get("class") != "mock" for entry in plain)
    mocks = [entry for entry in with_mocks if entry.get("class") == "mock"]
    assert {entry["name"] for entry in mocks} == {"mock_" + entry["name"].split("_", 1)[1] for entry in plain}
    assert all(entry["status"]["name"] == "online" for entry in mocks)
