"""The part of a device a circuit uses: its touched qubits, renumbered, with their noise.

A circuit transpiled for a 127- or 156-qubit device usually acts on a few qubits. Aer cannot hold
the whole device in memory, and building its noise model takes seconds, so every program runs on
the sub-device of the qubits its circuit touches: the circuit renumbered onto them, on a simulator
whose noise is what ``NoiseModel.from_backend`` builds for the device, restricted to those qubits
and the couplings among them (gate, readout and delay-relaxation errors alike). A qubit nothing
acts on stays in |0> and is never read, so leaving it out changes no outcome.

Some programs touch every qubit: the executor's Estimator twirls and reads out all 127 or 156 qubits
of its observables' width, whatever the circuit entangles. That noise is local to each operation's
qubits, so qubits that no operation links (directly or through others, by gates or by classical
bits) evolve and are read independently: ``independent_parts`` finds them and ``sub_devices``
packs them into sub-devices small enough for Aer, each run on its own, their outcomes side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING

from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit import Barrier, Qubit
from qiskit.transpiler import Target

if TYPE_CHECKING:
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import NoiseModel

# Groups of device qubits: a sub-device keeps the couplings within each group, none between them.
Parts = tuple[tuple[int, ...], ...]
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


def independent_parts(circuit: QuantumCircuit) -> tuple[tuple[int, ...], ...]:
    """The touched qubits, grouped so that no operation links two groups; by their first qubit.

    An operation links the qubits and classical bits it acts on: a multi-qubit gate, a measurement
    into a bit another qubit also writes, a condition on a bit. Under local noise the groups'
    outcomes are independent, so each may be simulated apart (``sub_devices``).
    """
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def root(node: tuple[str, int]) -> tuple[str, int]:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for instruction in circuit.data:
        if instruction.operation.name in _IDLE_OPERATIONS:
            continue
        nodes = [("q", circuit.find_bit(qubit).index) for qubit in instruction.qubits]
        nodes += [("c", circuit.find_bit(clbit).index) for clbit in instruction.clbits]
        first = root(nodes[0])
        for node in nodes[1:]:
            parent[root(node)] = first
    parts: dict[tuple[str, int], list[int]] = {}
    for kind, index in sorted(parent):
        if kind == "q":
            parts.setdefault(root((kind, index)), []).append(index)
    return tuple(sorted(tuple(qubits) for qubits in parts.values())) or ((0,),)


def sub_devices(parts: Iterable[tuple[int, ...]], max_qubits: int) -> tuple[Parts, ...]:
    """``parts`` packed, in order, into sub-devices of at most ``max_qubits`` (a wider part alone).

    Aer simulates a sub-device's qubits together, each shot costing twice as much per qubit added,
    and runs each sub-device at a fixed cost: small parts share one, a part is never split.
    """
    packed: list[list[tuple[int, ...]]] = []
    for part in parts:
        if packed and sum(map(len, packed[-1])) + len(part) <= max_qubits:
            packed[-1].append(part)
        else:
            packed.append([part])
    return tuple(tuple(group) for group in packed)


def qubits_of(parts: Parts) -> tuple[int, ...]:
    """The qubits of a sub-device of ``parts``, in index order (its qubit ``i`` is the ``i``-th)."""
    return tuple(sorted(qubit for part in parts for qubit in part))


def reduce_circuit(circuit: QuantumCircuit, touched: Sequence[int]) -> QuantumCircuit:
    """``circuit`` on ``touched`` only: qubit ``i`` of the result is qubit ``touched[i]``."""
    (reduced,) = split_circuit(circuit, (touched,))
    return reduced


def split_circuit(circuit: QuantumCircuit, qubit_sets: Sequence[Sequence[int]]) -> tuple[QuantumCircuit, ...]:
    """``circuit`` on each of the disjoint ``qubit_sets``, as ``reduce_circuit``, in one pass.

    Each piece keeps every classical bit, so the bits a piece measures keep their places. Only
    idle operations may reach beyond a set: a barrier is cut to the set's qubits, a delay dropped.
    """
    owner = {
        qubit: (piece, position)
        for piece, qubits in enumerate(qubit_sets)
        for position, qubit in enumerate(qubits)
    }
    loose_clbits = [bit for bit in circuit.clbits if not circuit.find_bit(bit).registers]
    pieces = []
    for qubits in qubit_sets:
        piece = QuantumCircuit(
            QuantumRegister(len(qubits), "q"),
            *circuit.cregs,
            global_phase=circuit.global_phase,
            metadata=circuit.metadata,
            name=circuit.name,
        )
        if loose_clbits:
            piece.add_bits(loose_clbits)
        pieces.append(piece)
    index = {qubit: position for position, qubit in enumerate(circuit.qubits)}
    for instruction in circuit.data:
        kept: dict[int, list[Qubit]] = {}
        for qubit in instruction.qubits:
            where = owner.get(index[qubit])
            if where is not None:
                kept.setdefault(where[0], []).append(pieces[where[0]].qubits[where[1]])
        for piece, qargs in kept.items():
            operation = instruction.operation
            if len(qargs) < len(instruction.qubits):
                if operation.name != "barrier":
                    continue
                operation = Barrier(len(qargs))
            pieces[piece].append(operation, qargs, instruction.clbits, copy=False)
    return tuple(pieces)


def sub_device_target(target: Target, touched: Sequence[int], parts: Parts | None = None) -> Target:
    """The device's target on ``touched``, renumbered as ``reduce_circuit`` does.

    Keeps each instruction's properties (error, duration, readout probabilities) on the touched
    qubits and the couplings among them, and the touched qubits' T1, T2 and frequency. Given the
    independent ``parts`` of ``touched``, keeps only the couplings within a part: no gate acts on
    the others, and their noise would only cost Aer time.
    """
    position = {qubit: index for index, qubit in enumerate(touched)}
    part_of = {qubit: index for index, part in enumerate(parts or (tuple(touched),)) for qubit in part}
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
            if qargs is not None
            and all(qubit in position for qubit in qargs)
            and len({part_of[qubit] for qubit in qargs}) == 1
        }
        if properties:
            sub.add_instruction(target.operation_from_name(name), properties, name=name)
    return sub


def sub_device_noise(target: Target, touched: Sequence[int], parts: Parts | None = None) -> NoiseModel:
    """``NoiseModel.from_backend`` of the sub-device: the device's own noise on ``touched``.

    ``from_backend`` reads a V2 backend's target, operation names and ``dt`` only, so it is handed
    the sub-device's target in that shape rather than a copy of its code.
    """
    from qiskit_aer.noise import NoiseModel

    sub = sub_device_target(target, touched, parts)
    backend = SimpleNamespace(version=2, target=sub, operation_names=list(sub.operation_names), dt=sub.dt)
    noise: NoiseModel = NoiseModel.from_backend(backend)
    return noise


def sub_device_simulator(target: Target, touched: Sequence[int], parts: Parts | None = None) -> AerSimulator:
    """An Aer simulator of the sub-device (milliseconds to build, where the whole device takes seconds)."""
    from qiskit_aer import AerSimulator

    return AerSimulator(noise_model=sub_device_noise(target, touched, parts))
