"""Estimator jobs through the client: results shaped as IBM shapes them, and utility-scale devices.

``evs``, ``stds`` and ``ensemble_standard_error`` are numpy arrays of the pub's broadcast shape,
whatever mode the job runs in. On the 127- and 133-qubit devices an observable laid out over the
whole device (``apply_layout``) is answered from the qubits the circuit touches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import Batch, EstimatorV2, QiskitRuntimeService, Session
from qiskit_ibm_runtime.ibm_backend import IBMBackend

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_for

pytestmark = pytest.mark.filterwarnings("ignore:The EstimatorV2 class is deprecated:DeprecationWarning")

# Four standard deviations of an expectation value at the default precision (1/64), plus the
# device's noise on a two-qubit Bell circuit.
BELL_TOLERANCE = 0.2


def rotated_bell(backend: IBMBackend) -> QuantumCircuit:
    """A Bell pair whose first qubit is turned by ``theta`` about Y: ``<ZZ> = cos(theta)``."""
    theta = Parameter("theta")
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.ry(theta, 0)
    isa: QuantumCircuit = transpile(circuit, backend=backend, optimization_level=1, seed_transpiler=7)
    return isa


def bell_on_the_best_pair(backend: IBMBackend) -> QuantumCircuit:
    """A Bell circuit (no measurements) on the coupled pair with the least gate and readout error.

    Utility-scale devices have poor qubits (qubit 0 of ``ibm_torino`` misreads one shot in six),
    and this test is about the reduction, not about which qubits the transpiler picks.
    """
    target = backend.target
    coupling = next(name for name in ("ecr", "cz", "cx") if name in target.operation_names)

    def error(pair: tuple[int, ...]) -> float:
        return float(
            target[coupling][pair].error
            + target["measure"][(pair[0],)].error
            + target["measure"][(pair[1],)].error
        )

    calibrated = [pair for pair, props in target[coupling].items() if props and props.error is not None]
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    isa: QuantumCircuit = transpile(
        circuit, backend=backend, initial_layout=list(min(calibrated, key=error)), seed_transpiler=7
    )
    return isa


def data_fields(pub_result: Any) -> dict[str, Any]:
    return {name: pub_result.data[name] for name in ("evs", "stds", "ensemble_standard_error")}


@pytest.mark.parametrize("mode_class", [None, Session, Batch], ids=["backend", "session", "batch"])
def test_expectation_values_are_arrays_of_each_pubs_broadcast_shape(
    emulator: RunningEmulator, service: QiskitRuntimeService, mode_class: type[Session] | None
) -> None:
    backend = service.backend(SMALL_BACKEND)
    bell = bell_for(backend, measure=False)
    zz = SparsePauliOp("ZZ").apply_layout(bell.layout)
    rotated = rotated_bell(backend)
    rotated_zz = SparsePauliOp("ZZ").apply_layout(rotated.layout)
    angles = np.array([[0.0], [np.pi / 2], [np.pi]])
    pubs = [
        (bell, zz),  # no parameters, one observable: ()
        (rotated, rotated_zz, [0.0]),  # one parameter set: ()
        (rotated, [rotated_zz, rotated_zz], angles[0]),  # (2,) observables, one set: (2,)
        (rotated, [[rotated_zz], [-rotated_zz]], angles),  # (2, 1) against (3,): (2, 3)
        (rotated, rotated_zz, angles),  # one observable, (3,) sets: (3,)
    ]

    if mode_class is None:
        result = EstimatorV2(mode=backend).run(pubs).result()
    else:
        with mode_class(backend=backend) as mode:
            result = EstimatorV2(mode=mode).run(pubs).result()

    shapes = [(), (), (2,), (2, 3), (3,)]
    for pub_result, shape in zip(result, shapes, strict=True):
        assert pub_result.data.shape == shape
        for name, value in data_fields(pub_result).items():
            assert isinstance(value, np.ndarray), (name, type(value))
            assert value.shape == shape, (name, value.shape)
            assert value.dtype == np.float64
        assert np.all(pub_result.data.stds > 0)
    bell_ev, one_set, pair, grid, row = (pub_result.data.evs for pub_result in result)
    assert bell_ev == pytest.approx(1.0, abs=BELL_TOLERANCE)
    assert one_set == pytest.approx(1.0, abs=BELL_TOLERANCE)
    assert pair == pytest.approx([1.0, 1.0], abs=BELL_TOLERANCE)
    expected_row = np.cos(angles[:, 0])
    assert row == pytest.approx(expected_row, abs=BELL_TOLERANCE)
    assert grid == pytest.approx(np.array([expected_row, -expected_row]), abs=BELL_TOLERANCE)


@pytest.mark.parametrize("backend_name", ["ibm_brisbane", "ibm_torino"])
def test_observables_spanning_a_utility_scale_device_are_answered_from_the_touched_qubits(
    emulator: RunningEmulator, service: QiskitRuntimeService, backend_name: str
) -> None:
    backend = service.backend(backend_name)
    bell = bell_on_the_best_pair(backend)
    width = backend.num_qubits
    pair = SparsePauliOp(["ZZ", "XX", "YY"], [1.0, 0.5, 0.25]).apply_layout(bell.layout)
    # Z on every qubit of the device: the untouched ones are |0>, each contributing +1.
    all_z = SparsePauliOp("Z" * width)
    # One X on an untouched qubit makes a term vanish; the Z part of the same sum stays.
    touched = set(bell.layout.final_index_layout())
    untouched = min(set(range(width)) - touched)
    mixed = SparsePauliOp.from_sparse_list(
        [("X", [untouched], 1.0), ("Z" * width, list(range(width)), 2.0)], width
    )
    only_x = SparsePauliOp.from_sparse_list([("X", [untouched], 1.0)], width)
    estimator = EstimatorV2(mode=backend)
    estimator.options.resilience_level = 2  # ZNE and TREX are asked for; the emulator ignores them
    estimator.options.resilience.zne.noise_factors = (1, 3)

    result = estimator.run([(bell, [pair, all_z, mixed, only_x])]).result()

    assert width in (127, 133)
    evs = result[0].data.evs
    assert evs.shape == (4,)
    # <ZZ> = 1, <XX> = 1 and <YY> = -1 on a Bell pair; <X> on an untouched qubit is exactly 0.
    assert evs[:3] == pytest.approx([1.0 + 0.5 - 0.25, 1.0, 2.0], abs=2 * BELL_TOLERANCE)
    assert evs[3] == 0.0
    assert result[0].data.stds[3] == 0.0
    assert result[0].data.stds.shape == (4,)
