"""The sub-device a circuit touches: its qubits renumbered, the device's own noise on them, built once."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.primitives import BackendSamplerV2
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel
from qiskit_ibm_runtime import RuntimeDecoder

from prefect_qiskit_jobs.emulator import execution, subdevice
from prefect_qiskit_jobs.emulator.catalog import Catalog, Device

from .test_execution import encoded


@pytest.fixture(scope="module")
def manila() -> Device:
    device = Catalog(("manila",)).get("ibmq_manila")
    assert device is not None
    return device


def measured_bell_on(device: Device, pair: list[int]) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    isa: QuantumCircuit = transpile(circuit, target=device.target, initial_layout=pair, seed_transpiler=3)
    return isa


def test_the_reduced_circuit_keeps_the_touched_qubits_in_order() -> None:
    circuit = QuantumCircuit(6, 2)
    circuit.h(4)
    circuit.delay(100, 0)
    circuit.barrier()
    circuit.cx(4, 2)
    circuit.measure(2, 1)

    touched = subdevice.touched_qubits(circuit)
    reduced = subdevice.reduce_circuit(circuit, touched)

    assert touched == (2, 4)
    expected = QuantumCircuit(2, 2)
    expected.h(1)
    expected.barrier()
    expected.cx(1, 0)
    expected.measure(0, 1)
    assert [(i.operation.name, [reduced.find_bit(q).index for q in i.qubits]) for i in reduced.data] == [
        (i.operation.name, [expected.find_bit(q).index for q in i.qubits]) for i in expected.data
    ]
    assert subdevice.touched_qubits(QuantumCircuit(3)) == (0,)


def test_sub_device_noise_is_the_device_noise_of_the_touched_qubits(manila: Device) -> None:
    full = NoiseModel.from_backend(manila.fake.fake_backend)

    sub = subdevice.sub_device_noise(manila.target, (1, 2))

    # Read Aer's tables to compare error by error: qubit 1 -> 0, qubit 2 -> 1.
    renumber = {1: 0, 2: 1}
    expected = {
        (name, tuple(renumber[q] for q in qubits)): error
        for name, by_qubits in full._local_quantum_errors.items()
        for qubits, error in by_qubits.items()
        if set(qubits) <= {1, 2}
    }
    got = {
        (name, qubits): error
        for name, by_qubits in sub._local_quantum_errors.items()
        for qubits, error in by_qubits.items()
    }
    assert got.keys() == expected.keys()
    assert ("cx", (0, 1)) in got
    assert all(got[key] == expected[key] for key in expected)
    assert sub._local_readout_errors == {
        (renumber[q],): e for (q,), e in full._local_readout_errors.items() if q in renumber
    }


def test_sub_device_noise_relaxes_the_touched_qubits_during_delays(manila: Device) -> None:
    # from_backend's delay relaxation, built from the sub-device's T1, T2 and dt.
    assert subdevice.sub_device_noise(manila.target, (1, 2))._custom_noise_passes


def test_a_device_builds_each_sub_device_simulator_once(manila: Device) -> None:
    assert manila.simulator((3, 4)) is manila.simulator((3, 4))
    assert manila.simulator((3, 4)) is not manila.simulator((0, 1))


def test_sampler_counts_on_the_sub_device_agree_with_the_whole_device(manila: Device) -> None:
    circuit = measured_bell_on(manila, [3, 4])
    shots = 20_000
    job = execution.decode_params("sampler", encoded([(circuit, None, shots)]))
    whole = BackendSamplerV2(backend=AerSimulator.from_backend(manila.fake.fake_backend))

    reduced = json.loads(execution.encode_result(execution.run(job, manila, seed=5)), cls=RuntimeDecoder)
    direct = whole.run([circuit], shots=shots).result()

    def distribution(counts: dict[str, int]) -> np.ndarray:
        return np.array([counts.get(k, 0) for k in ("00", "01", "10", "11")]) / shots

    ours, theirs = (
        distribution(reduced[0].data.meas.get_counts()),
        distribution(direct[0].data.meas.get_counts()),
    )
    # Both read the noisy Bell state: the same distribution within 5 sigma of shot noise.
    assert np.all(np.abs(ours - theirs) < 5 * np.sqrt(2 * theirs * (1 - theirs) / shots) + 1e-3)
    assert theirs[1] + theirs[2] > 0.01  # the noise is there to be compared


def test_qubits_no_operation_links_are_independent_parts() -> None:
    circuit = QuantumCircuit(6, 3)
    circuit.sx(5)
    circuit.cx(4, 2)
    circuit.barrier()  # links nothing
    circuit.delay(100, 3)  # touches nothing
    circuit.x(0)
    circuit.measure(0, 0)
    circuit.measure(1, 0)  # writes the bit qubit 0 wrote: linked through it
    circuit.measure(2, 1)

    parts = subdevice.independent_parts(circuit)

    assert parts == ((0, 1), (2, 4), (5,))
    assert subdevice.sub_devices(parts, 3) == (((0, 1),), ((2, 4), (5,)))
    assert subdevice.sub_devices(parts, 5) == (((0, 1), (2, 4), (5,)),)
    assert subdevice.qubits_of(((2, 4), (0,))) == (0, 2, 4)


def test_split_circuit_gives_each_sub_device_its_own_operations_and_every_clbit() -> None:
    circuit = QuantumCircuit(4, 4)
    circuit.x(3)
    circuit.barrier()
    circuit.cx(0, 2)
    circuit.measure(range(4), range(4))

    low, high = subdevice.split_circuit(circuit, [(0, 2), (3,)])

    def ops(piece: QuantumCircuit) -> list[tuple[str, list[int], list[int]]]:
        return [
            (
                i.operation.name,
                [piece.find_bit(q).index for q in i.qubits],
                [piece.find_bit(c).index for c in i.clbits],
            )
            for i in piece.data
        ]

    assert ops(low) == [
        ("barrier", [0, 1], []),
        ("cx", [0, 1], []),
        ("measure", [0], [0]),
        ("measure", [1], [2]),
    ]
    assert ops(high) == [("x", [0], []), ("barrier", [0], []), ("measure", [0], [3])]
    assert low.num_clbits == high.num_clbits == 4


def test_a_sub_device_of_independent_parts_has_no_couplings_between_them(manila: Device) -> None:
    # manila is a line 0-1-2-3-4: (1, 2) coupled, 3 coupled to 2 but a part of its own.
    sub = subdevice.sub_device_target(manila.target, (1, 2, 3), parts=((1, 2), (3,)))

    assert set(sub["cx"]) == {(0, 1), (1, 0)}
    assert set(sub["sx"]) == {(0,), (1,), (2,)}
    assert set(subdevice.sub_device_target(manila.target, (1, 2, 3))["cx"]) == {
        (0, 1),
        (1, 0),
        (1, 2),
        (2, 1),
    }
