"""Program ``executor``: the client's executor-based Sampler and Estimator, run against the emulator.

The client turns pubs into a quantum program (``ibm_quantum_schemas`` executor v2.0) and decodes
the quantum-program result back into a ``PrimitiveResult``; the emulator must speak both schemas.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import QiskitRuntimeService
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.executor_sampler import Sampler

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_circuit, bell_for, post_job

SHOTS = 1000


def test_executor_sampler_gives_bell_counts(service: QiskitRuntimeService, emulator: RunningEmulator) -> None:
    backend = service.backend(SMALL_BACKEND)

    job = Sampler(mode=backend).run([bell_for(backend)], shots=SHOTS)
    result = job.result()

    counts = result[0].data.meas.get_counts()
    assert sum(counts.values()) == SHOTS
    assert counts.get("00", 0) + counts.get("11", 0) >= 0.85 * SHOTS, counts
    assert 0.35 * SHOTS < counts.get("00", 0) < 0.65 * SHOTS, counts
    assert [(entry["program_id"], entry["status"]) for entry in emulator.jobs()] == [
        ("executor", "Completed")
    ]


def test_executor_estimator_gives_zz_of_a_bell_state(service: QiskitRuntimeService) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend, measure=False)
    observables = [SparsePauliOp(label).apply_layout(circuit.layout) for label in ("ZZ", "XX", "ZI")]

    result = Estimator(mode=backend).run([(circuit, observables)], precision=0.03).result()

    evs, stds = result[0].data.evs, result[0].data.stds
    assert evs.shape == stds.shape == (3,)
    assert 0.8 < evs[0] <= 1.05, evs
    assert 0.8 < evs[1] <= 1.05, evs
    assert abs(evs[2]) < 0.2, evs
    assert all(0 < std < 0.1 for std in stds), stds


# ----- strictness: what IBM refuses is refused before a job exists ---------------------------
def _executor_body(service: QiskitRuntimeService, circuit: QuantumCircuit) -> dict[str, Any]:
    """The body the client's executor Sampler posts for ``circuit``, captured from its encoder."""
    from qiskit_ibm_runtime.executor_sampler.prepare import prepare
    from qiskit_ibm_runtime.options_models.sampler import SamplerOptions
    from qiskit_ibm_runtime.quantum_program.params_converters import QUANTUM_PROGRAM_PARAMS_CONVERTERS

    backend = service.backend(SMALL_BACKEND)
    program, options = prepare([circuit], SamplerOptions(), SHOTS, add_tags=False, backend=backend)
    params = QUANTUM_PROGRAM_PARAMS_CONVERTERS["v2.0"].encoder(program, options)
    return {"program_id": "executor", "backend": SMALL_BACKEND, "params": params.model_dump(mode="json")}


def test_an_unknown_schema_version_is_refused_with_no_job_created(
    service: QiskitRuntimeService, emulator: RunningEmulator
) -> None:
    body = _executor_body(service, bell_for(service.backend(SMALL_BACKEND)))
    wrong = copy.deepcopy(body)
    wrong["params"]["schema_version"] = "v9.9"

    response = post_job(emulator, wrong)

    assert response.status_code == 400, response.text
    assert "v9.9" in json.dumps(response.json())
    assert emulator.jobs() == []


def test_a_non_isa_circuit_is_refused_with_no_job_created(
    service: QiskitRuntimeService, emulator: RunningEmulator
) -> None:
    response = post_job(emulator, _executor_body(service, bell_circuit()))  # h is not native

    assert response.status_code == 400, response.text
    assert "ISA" in json.dumps(response.json())
    assert emulator.jobs() == []


@pytest.mark.parametrize("shots", [0, -5])
def test_a_program_without_positive_shots_is_refused(
    service: QiskitRuntimeService, emulator: RunningEmulator, shots: int
) -> None:
    body = _executor_body(service, bell_for(service.backend(SMALL_BACKEND)))
    body["params"]["quantum_program"]["shots"] = shots

    response = post_job(emulator, body)

    assert response.status_code == 400, response.text
    assert emulator.jobs() == []


@pytest.mark.parametrize("backend_name", ["ibm_brisbane", "ibm_fez"])
def test_the_executor_estimator_runs_on_a_utility_scale_device_with_zne_and_twirling(
    service: QiskitRuntimeService, backend_name: str
) -> None:
    # IBM runs it; Aer cannot hold the whole device, and the client twirls and reads every qubit of
    # the observables' width, so the emulator runs the qubits no gate links apart, a few at a time.
    backend = service.backend(backend_name)
    circuit = bell_for(backend, measure=False)
    observables = [SparsePauliOp(label).apply_layout(circuit.layout) for label in ("ZZ", "XX", "ZI")]
    estimator = Estimator(mode=backend)
    estimator.options.twirling.enable_gates = True
    estimator.options.resilience.zne_mitigation = True
    estimator.options.resilience.zne.noise_factors = (1, 3)

    result = estimator.run([(circuit, observables)], precision=0.05).result()

    data = result[0].data
    assert backend.num_qubits >= 127
    assert data.evs.shape == (3,)
    assert data.evs_noise_factors.shape == (3, 2)
    # The noisy Bell state at each noise factor: ZZ and XX near +1 (folding lowers them), ZI near 0.
    factors = data.evs_noise_factors
    assert np.all((factors[:2] > 0.7) & (factors[:2] < 1.2)), factors
    assert np.all(np.abs(factors[2]) < 0.2), factors
    # Extrapolated to zero noise: ZZ and XX stay near +1. (ZI is left out: the client's exponential
    # fit of two values near 0, of either sign, may land anywhere, on IBM as here.)
    assert 0.7 < data.evs[0] < 1.3, data.evs
    assert 0.7 < data.evs[1] < 1.3, data.evs


def test_the_executor_sampler_runs_on_a_utility_scale_device(service: QiskitRuntimeService) -> None:
    backend = service.backend("ibm_torino")

    counts = Sampler(mode=backend).run([bell_for(backend)], shots=SHOTS).result()[0].data.meas.get_counts()

    assert sum(counts.values()) == SHOTS
    # The transpiler's pair on ibm_torino reads poorly: a looser bound than on manila.
    assert counts.get("00", 0) + counts.get("11", 0) >= 0.7 * SHOTS, counts
