"""Executor items run in independent parts: the bits read as if the whole device ran them."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime.fake_provider.executor.run_quantum_program import run_quantum_program
from qiskit_ibm_runtime.options_models.simulator import SimulatorOptions
from qiskit_ibm_runtime.quantum_program import QuantumProgram

from prefect_qiskit_jobs.emulator import executor_program
from prefect_qiskit_jobs.emulator.catalog import Catalog

SHOTS = 20_000


def test_an_item_run_in_parts_reads_as_the_whole_device() -> None:
    device = Catalog(("manila",)).get("ibmq_manila")
    assert device is not None
    # A Bell pair on 0-1, a flipped qubit 3, idle 2 and 4: every qubit read, as the executor does.
    circuit = QuantumCircuit(5, 5)
    circuit.rz(np.pi / 2, 0)
    circuit.sx(0)
    circuit.rz(np.pi / 2, 0)
    circuit.cx(0, 1)
    circuit.x(3)
    circuit.measure(range(5), range(5))
    program = QuantumProgram(shots=SHOTS)
    program.append_circuit_item(circuit)

    parts = executor_program._run_item(program, 0, device, seed=11)
    (whole,) = run_quantum_program(
        AerSimulator.from_backend(device.fake.fake_backend), program, SimulatorOptions(seed_simulator=12)
    )

    ours, theirs = parts["c"], whole["c"]
    assert ours.shape == theirs.shape == (SHOTS, 5)
    # Each qubit's rate of 1s, and the pair's parity, agree within 5 sigma of shot noise.
    ours_rates = np.array([*ours.mean(axis=0), (ours[:, 0] ^ ours[:, 1]).mean()])
    theirs_rates = np.array([*theirs.mean(axis=0), (theirs[:, 0] ^ theirs[:, 1]).mean()])
    sigma = np.sqrt(2 * theirs_rates * (1 - theirs_rates) / SHOTS)
    assert np.all(np.abs(ours_rates - theirs_rates) < 5 * sigma + 1e-3), (ours_rates, theirs_rates)
    # The states are there to be compared: qubit 3 flipped, qubit 0 half the time.
    assert theirs_rates[3] > 0.9
    assert 0.4 < theirs_rates[0] < 0.6
