"""Estimator pubs run on the qubits their circuit touches, with results shaped as IBM shapes them.

A circuit on a 127- or 133-qubit device usually acts on a few qubits, while its observables, laid
out with ``apply_layout``, span the device. Simulating every qubit is beyond Aer's memory, and
needless: a qubit no gate or measurement acts on stays in |0>, so each Pauli term factorises into
the touched part, which Aer estimates, and an exact factor of the untouched part (+1 for I and Z on
each untouched qubit, 0 for X and Y; projectors likewise). Each pub runs on a simulator of the
sub-device, with the noise ``NoiseModel.from_backend`` gives the device, restricted to the touched
qubits and the couplings among them: gate errors (depolarising and thermal relaxation) and readout
errors. Relaxation during ``delay`` instructions is not modelled, and untouched qubits are read
without readout error.

IBM's error mitigation (``resilience_level``, TREX, ZNE, PEC, twirling) is not applied: the options
are accepted and ignored, and the values are the noisy estimates at the requested precision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit import QuantumCircuit, QuantumRegister
from qiskit.circuit import Barrier
from qiskit.primitives import BackendEstimatorV2, DataBin, PrimitiveResult, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.observables_array import ObservablesArray
from qiskit.transpiler import Target

if TYPE_CHECKING:
    from qiskit_aer.noise import NoiseModel

    from .catalog import Device

# <0|P|0> for each single-qubit operator SparseObservable labels may hold.
IDLE_EXPECTATIONS = {
    "I": 1.0,
    "Z": 1.0,
    "X": 0.0,
    "Y": 0.0,
    "0": 1.0,
    "1": 0.0,
    "+": 0.5,
    "-": 0.5,
    "r": 0.5,
    "l": 0.5,
}
# Instructions that leave a qubit in |0> (delays' relaxation is not modelled).
_IDLE_OPERATIONS = frozenset({"barrier", "delay"})


def estimate(
    pubs: Sequence[EstimatorPub], device: Device, precision: float, seed: int | None
) -> PrimitiveResult[PubResult]:
    """Run each pub on the sub-device of the qubits its circuit touches."""
    results = [_estimate_pub(pub, device.target, precision, seed) for pub in pubs]
    return PrimitiveResult(results, metadata={"version": 2})


def _estimate_pub(pub: EstimatorPub, target: Target, precision: float, seed: int | None) -> PubResult:
    from qiskit_aer import AerSimulator

    touched = touched_qubits(pub.circuit)
    observables, vanished = reduce_observables(pub.observables, touched)
    reduced = EstimatorPub(
        reduce_circuit(pub.circuit, touched), observables, pub.parameter_values, pub.precision
    )
    simulator = AerSimulator(noise_model=sub_device_noise(target, touched))
    estimator = BackendEstimatorV2(
        backend=simulator, options={"default_precision": precision, "seed_simulator": seed}
    )
    (result,) = estimator.run([reduced]).result()
    return shaped_as_ibm(result, pub.shape, np.broadcast_to(vanished, pub.shape))


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


def reduce_observables(
    observables: ObservablesArray, touched: Sequence[int]
) -> tuple[ObservablesArray, np.ndarray]:
    """Each observable on ``touched``, the untouched qubits' exact |0> expectation folded in.

    Also says which observables vanish (every term has X or Y on an untouched qubit): qiskit
    refuses an empty observable, so they are estimated as the identity and zeroed afterwards.
    """
    flat = [reduce_observable(terms, touched) for terms in observables.ravel().tolist()]
    vanished = np.array([not terms for terms in flat], dtype=bool).reshape(observables.shape)
    array = np.empty(len(flat), dtype=object)
    array[:] = [terms or {"I" * len(touched): 1.0} for terms in flat]
    return ObservablesArray(array.reshape(observables.shape)), vanished


def reduce_observable(terms: Mapping[str, float], touched: Sequence[int]) -> dict[str, float]:
    """A ``{label: coefficient}`` observable (qubit 0 rightmost) restricted to ``touched``.

    Terms whose untouched part has expectation 0 are dropped, so the result may be empty.
    """
    kept = set(touched)
    reduced: dict[str, float] = {}
    for label, coefficient in terms.items():
        width = len(label)
        factor = 1.0
        for qubit in range(width):
            if qubit not in kept:
                factor *= IDLE_EXPECTATIONS[label[width - 1 - qubit]]
        if factor == 0.0:
            continue
        reduced_label = "".join(label[width - 1 - qubit] for qubit in reversed(touched))
        reduced[reduced_label] = reduced.get(reduced_label, 0.0) + coefficient * factor
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
    """Aer's device noise (as ``NoiseModel.from_backend`` builds it) for the touched qubits only.

    Building it for the whole of a 127-qubit device takes seconds; for a few qubits, milliseconds.
    ``from_backend``'s relaxation during delays is left out.
    """
    from qiskit_aer.noise import NoiseModel
    from qiskit_aer.noise.device import basic_device_gate_errors, basic_device_readout_errors

    sub = sub_device_target(target, touched)
    noise = NoiseModel(basis_gates=list(target.operation_names))
    for qubits, readout_error in basic_device_readout_errors(target=sub):
        noise.add_readout_error(readout_error, qubits, warnings=False)
    for name, qubits, gate_error in basic_device_gate_errors(target=sub):
        noise.add_quantum_error(gate_error, name, qubits, warnings=False)
    return noise


def shaped_as_ibm(result: PubResult, shape: tuple[int, ...], vanished: np.ndarray) -> PubResult:
    """IBM's data bin: ``evs``, ``stds`` and ``ensemble_standard_error``, float arrays of ``shape``.

    Qiskit's reference estimator leaves a 0-d pub's ``stds`` a numpy scalar, which the client's
    encoder writes as a bare float. Without twirling every shot is independent, so the ensemble
    standard error is the standard error. ``vanished`` observables are exactly 0.
    """
    evs = np.array(result.data.evs, dtype=np.float64).reshape(shape)
    stds = np.array(result.data.stds, dtype=np.float64).reshape(shape)
    evs[vanished] = 0.0
    stds[vanished] = 0.0
    data = DataBin(evs=evs, stds=stds, ensemble_standard_error=stds.copy(), shape=shape)
    metadata: dict[str, Any] = dict(result.metadata)
    return PubResult(data, metadata=metadata)
