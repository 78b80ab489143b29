"""Estimator pubs reduced to the qubits their circuit touches, and results shaped as IBM's."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.primitives import BackendEstimatorV2
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.observables_array import ObservablesArray
from qiskit.quantum_info import SparsePauliOp
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime import RuntimeDecoder

from prefect_qiskit_jobs.emulator import estimation, execution
from prefect_qiskit_jobs.emulator.catalog import Catalog, Device
from prefect_qiskit_jobs.emulator.estimator_options import EstimatorSettings

from .test_execution import encoded


@pytest.fixture(scope="module")
def manila() -> Device:
    device = Catalog(("manila",)).get("ibmq_manila")
    assert device is not None
    return device


def bell_on(device: Device, pair: list[int]) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    isa: QuantumCircuit = transpile(circuit, target=device.target, initial_layout=pair, seed_transpiler=3)
    return isa


def test_untouched_qubits_contribute_their_exact_expectation_in_zero() -> None:
    # Five qubits (labels have qubit 0 rightmost), qubits 1 and 3 touched. In |0>, I, Z and the
    # projector 0 give 1, X, Y and 1 give 0, and +, -, r, l give 1/2.
    terms = {
        "IZIXZ": 2.0,  # Z and I untouched: kept as ZX
        "ZXZIZ": 3.0,  # kept as XI
        "IIIII": 0.5,  # identity
        "I1I0I": 7.0,  # projectors on touched qubits stay
        "XZIII": 1.0,  # X untouched: vanishes
        "IZY1I": 1.0,  # Y untouched: vanishes
        "+IIZ1": 9.0,  # 1 untouched: vanishes
        "-IIZI": 4.0,  # - untouched: halved, then merged with the next
        "IIIZI": 1.0,
    }

    reduced = estimation.reduce_observable(terms, (1, 3))

    assert reduced == {"ZX": 2.0, "XI": 3.0, "II": 0.5, "10": 7.0, "IZ": 4.0 * 0.5 + 1.0}
    assert estimation.reduce_observable({"XII": 1.0}, (0, 1)) == {}


def test_reduced_observables_keep_the_pubs_shape() -> None:
    observables = ObservablesArray.coerce([[SparsePauliOp("ZIZ")], [SparsePauliOp("XII")]])

    reduced, vanished = estimation.reduce_observables(observables, (0,))

    assert reduced.shape == (2, 1)
    assert reduced.tolist() == [[{"Z": 1.0}], [{"I": 1.0}]]  # the vanished one as a placeholder
    assert vanished.tolist() == [[False], [True]]


def test_reduced_estimates_agree_with_the_whole_device_under_its_noise(manila: Device) -> None:
    circuit = bell_on(manila, [3, 4])
    observables = [SparsePauliOp(p).apply_layout(circuit.layout) for p in ("ZZ", "XX", "ZI")]
    pub = EstimatorPub.coerce((circuit, observables), precision=0.01)
    whole = BackendEstimatorV2(
        backend=AerSimulator.from_backend(manila.fake.fake_backend), options={"seed_simulator": 4}
    )

    untwirled = EstimatorSettings.from_params({"resilience_level": 0})
    reduced = estimation.estimate([pub], manila, untwirled, seed=4)[0].data
    direct = whole.run([pub]).result()[0].data

    # Noise lowers <ZZ> and <XX> below 1 on qubits 3-4; both agree within 5 sigma of each other.
    assert np.all(np.abs(reduced.evs - direct.evs) < 5 * np.hypot(reduced.stds, direct.stds))
    assert reduced.evs[0] < 0.99
    assert reduced.evs[2] == pytest.approx(0.0, abs=0.05)


def test_a_zero_dimensional_pub_decodes_to_zero_dimensional_arrays(manila: Device) -> None:
    circuit = bell_on(manila, [0, 1])
    job = execution.decode_params(
        "estimator", encoded([(circuit, SparsePauliOp("ZZ").apply_layout(circuit.layout))])
    )

    result = json.loads(execution.encode_result(execution.run(job, manila, seed=1)), cls=RuntimeDecoder)

    data = result[0].data
    assert data.shape == ()
    for name in ("evs", "stds", "ensemble_standard_error"):
        assert isinstance(data[name], np.ndarray)
        assert data[name].shape == ()
    assert data.evs == pytest.approx(1.0, abs=0.2)
    assert result[0].metadata["shots"] == 4096


@pytest.mark.parametrize("shots", [1, 3, 100, 448, 4096, 10016, 123457])
def test_the_reference_estimator_runs_exactly_the_planned_shots(shots: int) -> None:
    precision = estimation.precision_of(shots)

    assert math.ceil(1.0 / precision**2) == shots
