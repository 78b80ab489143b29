"""Estimator pubs run on the qubits their circuit touches, with results shaped as IBM shapes them.

A circuit on a 127- or 133-qubit device usually acts on a few qubits, while its observables, laid
out with ``apply_layout``, span the device. Simulating every qubit is beyond Aer's memory, and
needless: a qubit no gate or measurement acts on stays in |0>, so each Pauli term factorises into
the touched part, which Aer estimates, and an exact factor of the untouched part (+1 for I and Z on
each untouched qubit, 0 for X and Y; projectors likewise). Each pub runs on the sub-device of its
touched qubits (``subdevice``), with the device's noise on them; untouched qubits are read without
readout error.

Each pub runs the shots IBM would run (``estimator_options``), and its metadata and the result's
report them and the settings the options resolve to, as IBM's do. IBM's error mitigation (TREX, ZNE,
PEC) and twirling are not applied: the values are the noisy estimates from those shots.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.primitives import BackendEstimatorV2, DataBin, PrimitiveResult, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.observables_array import ObservablesArray

from .subdevice import reduce_circuit, touched_qubits

if TYPE_CHECKING:
    from .catalog import Device
    from .estimator_options import EstimatorSettings

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


def estimate(
    pubs: Sequence[EstimatorPub], device: Device, settings: EstimatorSettings, seed: int | None
) -> PrimitiveResult[PubResult]:
    """Run each pub, with the shots IBM would give it, on the sub-device of the qubits it touches."""
    results = [_estimate_pub(pub, device, settings, seed) for pub in pubs]
    return PrimitiveResult(results, metadata=settings.result_metadata())


def _estimate_pub(
    pub: EstimatorPub, device: Device, settings: EstimatorSettings, seed: int | None
) -> PubResult:
    plan = settings.plan(pub.precision)
    touched = touched_qubits(pub.circuit)
    observables, vanished = reduce_observables(pub.observables, touched)
    reduced = EstimatorPub(
        reduce_circuit(pub.circuit, touched), observables, pub.parameter_values, precision_of(plan.shots)
    )
    estimator = BackendEstimatorV2(backend=device.simulator(touched), options={"seed_simulator": seed})
    (result,) = estimator.run([reduced]).result()
    metadata = settings.pub_metadata(plan, dict(pub.circuit.metadata or {}))
    return shaped_as_ibm(result, pub.shape, np.broadcast_to(vanished, pub.shape), metadata)


def precision_of(shots: int) -> float:
    """The precision for which qiskit's reference estimator runs exactly ``shots`` shots."""
    precision = 1 / math.sqrt(shots)
    while math.ceil(1.0 / precision**2) > shots:
        precision = float(np.nextafter(precision, np.inf))
    while math.ceil(1.0 / precision**2) < shots:
        precision = float(np.nextafter(precision, 0.0))
    return precision


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


def shaped_as_ibm(
    result: PubResult, shape: tuple[int, ...], vanished: np.ndarray, metadata: dict[str, Any]
) -> PubResult:
    """IBM's data bin: ``evs``, ``stds`` and ``ensemble_standard_error``, float arrays of ``shape``.

    Qiskit's reference estimator leaves a 0-d pub's ``stds`` a numpy scalar, which the client's
    encoder writes as a bare float. Without twirling every shot is independent, so the ensemble
    standard error is the standard error. ``vanished`` observables are exactly 0. ``metadata`` is IBM's.
    """
    evs = np.array(result.data.evs, dtype=np.float64).reshape(shape)
    stds = np.array(result.data.stds, dtype=np.float64).reshape(shape)
    evs[vanished] = 0.0
    stds[vanished] = 0.0
    data = DataBin(evs=evs, stds=stds, ensemble_standard_error=stds.copy(), shape=shape)
    return PubResult(data, metadata=metadata)
