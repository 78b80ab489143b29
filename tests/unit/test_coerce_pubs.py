"""Pubs are coerced into qiskit's containers before anything is sent; a bad one is named by its index."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit.quantum_info import SparsePauliOp

from prefect_qiskit_jobs import InvalidJobInputError, Primitive
from prefect_qiskit_jobs.submit.call import coerce_pubs


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def test_circuits_and_tuples_become_sampler_pubs() -> None:
    pubs = coerce_pubs(Primitive.SAMPLER, [bell(), (bell(), None, 100)])

    assert all(isinstance(pub, SamplerPub) for pub in pubs)
    assert [pub.shots for pub in pubs] == [None, 100]


def test_a_single_circuit_is_one_pub() -> None:
    (pub,) = coerce_pubs(Primitive.SAMPLER, bell())

    assert pub.circuit.num_qubits == 2


def test_estimator_pubs_take_observables() -> None:
    (pub,) = coerce_pubs(
        Primitive.ESTIMATOR, [(bell().remove_final_measurements(inplace=False), SparsePauliOp("ZZ"))]
    )

    assert isinstance(pub, EstimatorPub)


def test_no_pubs_at_all_is_refused() -> None:
    with pytest.raises(InvalidJobInputError, match="No pubs given: pass at least one circuit or pub tuple"):
        coerce_pubs(Primitive.SAMPLER, [])


def test_the_bad_pub_is_named_by_its_index() -> None:
    with pytest.raises(InvalidJobInputError, match="Pub 1 is not a valid sampler pub"):
        coerce_pubs(Primitive.SAMPLER, [bell(), "not a circuit"])


def test_unbound_parameters_are_refused_with_the_count() -> None:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.measure_all()

    with pytest.raises(InvalidJobInputError, match=r"Pub 0 .*number of values \(0\).*parameters \(1\)"):
        coerce_pubs(Primitive.SAMPLER, [circuit])


def test_nonpositive_shots_are_refused() -> None:
    with pytest.raises(
        InvalidJobInputError, match="Pub 0 is not a valid sampler pub: shots must be positive"
    ):
        coerce_pubs(Primitive.SAMPLER, [(bell(), None, 0)])


def test_an_estimator_pub_without_observables_is_refused() -> None:
    with pytest.raises(InvalidJobInputError, match="Pub 0 is not a valid estimator pub"):
        coerce_pubs(Primitive.ESTIMATOR, [bell()])


def test_a_single_pub_tuple_is_one_pub_not_a_sequence_of_pubs() -> None:
    theta = Parameter("θ")
    circuit = QuantumCircuit(1)
    circuit.ry(theta, 0)
    circuit.measure_all()

    (sampler_pub,) = coerce_pubs(Primitive.SAMPLER, (circuit, [[0.1], [0.2]], 50))
    (estimator_pub,) = coerce_pubs(
        Primitive.ESTIMATOR, (circuit.remove_final_measurements(inplace=False), SparsePauliOp("Z"), [0.3])
    )

    assert sampler_pub.shots == 50
    assert sampler_pub.parameter_values.shape == (2,)
    assert estimator_pub.observables.shape == ()


def test_a_tuple_of_circuits_is_a_sequence_of_pubs() -> None:
    assert len(coerce_pubs(Primitive.SAMPLER, (bell(), bell()))) == 2


NAN, INF = float("nan"), float("inf")


def rotation() -> QuantumCircuit:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.measure_all()
    return circuit


@pytest.mark.parametrize(
    ("primitive", "pub", "names"),
    [
        (Primitive.ESTIMATOR, (bell().remove_final_measurements(inplace=False), {"ZZ": NAN}), "observables"),
        (
            Primitive.ESTIMATOR,
            (bell().remove_final_measurements(inplace=False), [["ZZ"], [{"XX": INF}]]),
            "observables",
        ),
        (Primitive.SAMPLER, (rotation(), [[0.1], [INF]]), "parameter values"),
        (Primitive.SAMPLER, (rotation(), {"theta": [NAN]}), "parameter values"),
    ],
)
def test_nan_or_infinity_is_refused_naming_the_item(
    primitive: Primitive, pub: tuple[object, ...], names: str
) -> None:
    with pytest.raises(InvalidJobInputError, match=f"Pub 0: the {names} contain NaN or infinity"):
        coerce_pubs(primitive, [pub])


def test_finite_numbers_and_labels_pass() -> None:
    (pub,) = coerce_pubs(Primitive.SAMPLER, [(rotation(), [[0.1], [2.0]])])

    assert pub.parameter_values.shape == (2,)
