"""The part of a device a circuit uses: its touched qubits, renumbered, with their noise.

A circuit transpiled for a 127- or 156-qubit device usually acts on a few qubits. Aer cannot hold
the whole device in memory, and building its noise model takes seconds, so every program runs on
the sub-device of the qubits its circuit touches: the circuit renumbered onto them, on a simulator
whose noise is what ``NoiseModel.from_backend`` builds for the device, restricted to those qubits
and the couplings among them (gate, readout and delay-relaxation errors alike). A qubit nothing
acts on stays in |0> and is never read, so leaving it out changes no outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING

from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit import Barrier
from qiskit.transpiler import Target

if TYPE_CHECKING:
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

# Instructions that leave a qubit in |0> (only relaxation during a delay would not, from |0>).
_IDLE_OPERATIONS = frozenset({"barrier", "delay"})


def touched_qubits(circuit: QuantumCircuit) -> tuple[int, ...]:
    """The qubits some gate or measurement acts on, in index order (qubit 0 if there are none)."""
    touched = {
        circuit.find_bit(qubit).index
        for instruction in circuit.data
        if instruction.operation.name not in _IDLE_OPERATIONS
        for qubit in instruction.qubits
    }
    return tuple(sorted(touched)) or (0,)


def reduce_circuit(circuit: QuantumCircuit, touched: Sequence[int]) -> QuantumCircuit:
    """``circuit`` on ``touched`` only: qubit ``i`` of the result is qubit ``touched[i]``."""
    position = {qubit: index for index, qubit in enumerate(touched)}
    reduced = QuantumCircuit(
        QuantumRegister(len(touched), "q"),
        *circuit.cregs,
        global_phase=circuit.global_phase,
        metadata=circuit.metadata,
        name=circuit.name,
    )
    loose_clbits = [bit for bit in circuit.clbits if not circuit.find_bit(bit).registers]
    if loose_clbits:
        reduced.add_bits(loose_clbits)
    for instruction in circuit.data:
        qubits = [circuit.find_bit(qubit).index for qubit in instruction.qubits]
        kept = [reduced.qubits[position[qubit]] for qubit in qubits if qubit in position]
        if not kept:
            continue
        operation = instruction.operation
        if len(kept) < len(qubits):  # only idle operations reach untouched qubits
            if operation.name != "barrier":
                continue
            operation = Barrier(len(kept))
        reduced.append(operation, kept, instruction.clbits, copy=False)
    return reduced


def sub_device_target(target: Target, touched: Sequence[int]) -> Target:
    """The device's target on ``touched``, renumbered as ``reduce_circuit`` does.

    Keeps each instruction's properties (error, duration, readout probabilities) on the touched
    qubits and the couplings among them, and the touched qubits' T1, T2 and frequency.
    """
    position = {qubit: index for index, qubit in enumerate(touched)}
    qubit_properties = target.qubit_properties
    sub = Target(
        num_qubits=len(touched),
        dt=target.dt,
        qubit_properties=None if qubit_properties is None else [qubit_properties[q] for q in touched],
    )
    for name in target.operation_names:
        properties = {
            tuple(position[qubit] for qubit in qargs): instruction_properties
            for qargs, instruction_properties in target[name].items()
            if qargs is not None and all(qubit in position for qubit in qargs)
        }
        if properties:
            sub.add_instruction(target.operation_from_name(name), properties, name=name)
    return sub


def sub_device_noise(target: Target, touched: Sequence[int]) -> NoiseModel:
    """``NoiseModel.from_backend`` of the sub-device: the device's own noise on ``touched``.

    ``from_backend`` reads a V2 backend's target, operation names and ``dt`` only, so it is handed
    the sub-device's target in that shape rather than a copy of its code.
    """
    from qiskit_aer.noise import NoiseModel

    sub = sub_device_target(target, touched)
    backend = SimpleNamespace(version=2, target=sub, operation_names=list(sub.operation_names), dt=sub.dt)
    noise: NoiseModel = NoiseModel.from_backend(backend)
    return noise


def sub_device_simulator(target: Target, touched: Sequence[int]) -> AerSimulator:
    """An Aer simulator of the sub-device (milliseconds to build, where the whole device takes seconds)."""
    from qiskit_aer import AerSimulator

    return AerSimulator(noise_model=sub_device_noise(target, touched))
