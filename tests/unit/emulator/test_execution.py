"""Decoding and checking job params exactly as the client encodes them, and running them on Aer."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder

from prefect_qiskit_jobs.emulator import execution
from prefect_qiskit_jobs.emulator.catalog import Catalog, Device
from prefect_qiskit_jobs.emulator.execution import InvalidJob, decode_params, validate


@pytest.fixture(scope="module")
def manila() -> Device:
    device = Catalog(("manila",)).get("ibmq_manila")
    assert device is not None
    return device


def encoded(pubs: list[Any], **options: Any) -> str:
    """The ``params`` object the way the client's ``RuntimeEncoder`` writes it."""
    return json.dumps(
        {"pubs": pubs, "options": options, "version": 2, "support_qiskit": True}, cls=RuntimeEncoder
    )


def bell(device: Device, measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    isa: QuantumCircuit = transpile(circuit, target=device.target, optimization_level=1, seed_transpiler=3)
    return isa


def rotation(device: Device) -> QuantumCircuit:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.measure_all()
    isa: QuantumCircuit = transpile(circuit, target=device.target, optimization_level=1, seed_transpiler=3)
    return isa


def test_sampler_pubs_decode_into_qiskit_pubs(manila: Device) -> None:
    circuit = bell(manila)

    job = decode_params(
        "sampler", encoded([(circuit, np.empty(0), 100), (circuit, None, None)], default_shots=7)
    )

    assert [type(pub) for pub in job.pubs] == [SamplerPub, SamplerPub]
    assert [pub.shots for pub in job.pubs] == [100, None]
    assert job.pubs[0].circuit == circuit
    assert job.options == {"default_shots": 7}
    validate(job, manila)


def test_estimator_pubs_decode_with_observables_and_precision(manila: Device) -> None:
    circuit = bell(manila, measure=False)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)

    job = decode_params("estimator", encoded([EstimatorPub.coerce((circuit, observable, None, 0.05))]))

    (pub,) = job.pubs
    assert isinstance(pub, EstimatorPub)
    assert pub.precision == 0.05
    assert pub.observables.shape == ()
    validate(job, manila)


def test_bound_parameters_decode_and_unbound_ones_are_refused(manila: Device) -> None:
    circuit = rotation(manila)

    values = np.array([[0.1], [0.2], [0.3]])
    bound = decode_params("sampler", encoded([SamplerPub.coerce((circuit, values, 10))]))
    assert bound.pubs[0].shape == (3,)
    with pytest.raises(InvalidJob, match=r"1 unbound parameters \(theta\) but 0 values"):
        decode_params("sampler", encoded([(circuit, None, 10)]))
    with pytest.raises(InvalidJob, match="but 2 values"):
        decode_params("sampler", encoded([(circuit, np.array([0.1, 0.2]), 10)]))


@pytest.mark.parametrize(
    ("program", "params", "message"),
    [
        ("circuit-runner", encoded([]), "not supported"),
        ("sampler", "{not json", "could not be decoded"),
        ("sampler", json.dumps({"pubs": []}), "non-empty list of pubs"),
        ("sampler", json.dumps({"pubs": "x"}), "non-empty list of pubs"),
        ("sampler", json.dumps([1]), "non-empty list of pubs"),
        ("sampler", json.dumps({"pubs": [7]}), "list starting with a circuit"),
        ("sampler", json.dumps({"pubs": [["not a circuit"]]}), "quantum circuit"),
        ("sampler", json.dumps({"pubs": [[{"__type__": "QuantumCircuit", "__value__": "@@"}]]}), "decoded"),
        (
            "sampler",
            encoded([(QuantumCircuit(1), None, 10)]).replace('"options": {}', '"options": 3'),
            "options",
        ),
        ("estimator", encoded([(QuantumCircuit(1), "not a pauli")]), "Pub 0 is malformed"),
    ],
)
def test_malformed_params_are_invalid_jobs(program: str, params: str, message: str) -> None:
    with pytest.raises(InvalidJob, match=message):
        decode_params(program, params)


def test_validate_refuses_what_the_device_cannot_run(manila: Device) -> None:
    wide = QuantumCircuit(6)
    wide.x(5)
    wide.measure_all()
    raw = QuantumCircuit(2)
    raw.h(0)
    raw.cx(0, 1)
    raw.measure_all()

    with pytest.raises(InvalidJob, match="Pub 0: the circuit has 6 qubits but ibmq_manila has 5"):
        validate(decode_params("sampler", encoded([(wide, None, 10)])), manila)
    with pytest.raises(InvalidJob, match=r"Pub 1: .*non-ISA"):
        validate(decode_params("sampler", encoded([(bell(manila), None, 10), (raw, None, 10)])), manila)
    with pytest.raises(InvalidJob, match="shots must be between 1"):
        validate(decode_params("sampler", encoded([(bell(manila), None, 10_000_001)])), manila)
    with pytest.raises(InvalidJob, match="shots must be positive"):
        decode_params("sampler", encoded([(bell(manila), None, 0)]))


def test_run_gives_a_result_the_client_decodes_and_the_seed_repeats(manila: Device) -> None:
    job = decode_params("sampler", encoded([(bell(manila), None, 200)]))

    first = json.loads(execution.encode_result(execution.run(job, manila, seed=5)), cls=RuntimeDecoder)
    again = json.loads(execution.encode_result(execution.run(job, manila, seed=5)), cls=RuntimeDecoder)

    counts = first[0].data.meas.get_counts()
    assert sum(counts.values()) == 200
    assert counts.get("00", 0) + counts.get("11", 0) >= 170
    assert again[0].data.meas.get_counts() == counts


def test_sampler_results_carry_execution_spans_over_every_shot(manila: Device) -> None:
    pubs = [
        SamplerPub.coerce((bell(manila), None, 30)),
        SamplerPub.coerce((rotation(manila), [[0.1], [0.2]], 20)),
    ]
    job = decode_params("sampler", encoded(pubs))

    result = json.loads(execution.encode_result(execution.run(job, manila, seed=2)), cls=RuntimeDecoder)

    spans = result.metadata["execution"]["execution_spans"]
    (span,) = spans
    assert span.start <= span.stop
    assert span.pub_idxs == [0, 1]
    assert span.size == 30 + 2 * 20
    assert span.mask(1).shape == (2, 20)
    assert span.mask(1).all()


def test_default_shots_apply_to_pubs_without_their_own(manila: Device) -> None:
    job = decode_params("sampler", encoded([(bell(manila), None, None)], default_shots=64))

    result = execution.run(job, manila, seed=1)

    assert result[0].data.meas.num_shots == 64
