"""What the example flows share: circuits, and the embedded emulator when no IBM account is set."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from qiskit import QuantumCircuit

from prefect_qiskit_jobs.emulator import EmulatorConfig, start_emulator


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def ghz(num_qubits: int) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits, name=f"ghz{num_qubits}")
    circuit.h(0)
    for qubit in range(num_qubits - 1):
        circuit.cx(qubit, qubit + 1)
    circuit.measure_all()
    return circuit


@contextlib.contextmanager
def ibm_or_emulator(queue_delay: float = 2.0) -> Iterator[str]:
    """Use the IBM account in ``QISKIT_IBM_TOKEN``/``QISKIT_IBM_INSTANCE`` if set; else start the emulator.

    Yields where the jobs go, for the banner. The emulator's variables are exported so that every
    task (and ``IBMQuantumCredentials.from_environment()``) finds it.
    """
    if os.environ.get("QISKIT_IBM_TOKEN") and os.environ.get("QISKIT_IBM_INSTANCE"):
        yield "IBM Quantum Platform (QISKIT_IBM_* environment)"
        return
    with start_emulator(EmulatorConfig(queue_delay=queue_delay, min_run_seconds=1.0)) as emulator:
        emulator.export_environment()
        yield f"the local IBM Quantum Platform emulator at {emulator.url}"
