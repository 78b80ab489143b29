"""Results are stored with the client's own JSON encoding: valid UTF-8, and they come back whole."""

from __future__ import annotations

import numpy as np
import pytest
from prefect.serializers import Serializer
from qiskit import QuantumCircuit
from qiskit.primitives import PrimitiveResult, StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp

from prefect_qiskit_jobs import RuntimeJSONSerializer, result_key


def bell(measure: bool = True) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    return circuit


def test_a_sampler_result_round_trips_through_utf8_bytes() -> None:
    result = StatevectorSampler(seed=11).run([bell(), (bell(), None, 64)], shots=100).result()
    serializer = RuntimeJSONSerializer()

    blob = serializer.dumps(result)
    back = serializer.loads(blob)

    assert isinstance(blob, bytes)
    blob.decode("utf-8")  # Prefect stores records as JSON text: anything else is silently not written
    assert isinstance(back, PrimitiveResult)
    assert [r.data.meas.get_counts() for r in back] == [r.data.meas.get_counts() for r in result]
    assert np.array_equal(back[1].data.meas.array, result[1].data.meas.array)
    assert back.metadata == result.metadata


def test_an_estimator_result_round_trips() -> None:
    result = StatevectorEstimator(seed=5).run([(bell(measure=False), SparsePauliOp("ZZ"))]).result()
    serializer = RuntimeJSONSerializer()

    back = serializer.loads(serializer.dumps(result))

    assert float(back[0].data.evs) == float(result[0].data.evs)
    assert float(back[0].data.evs) == pytest.approx(1.0)
    assert back[0].metadata == result[0].metadata


def test_prefect_finds_the_serializer_by_its_type_name() -> None:
    # What a reader in another process does with a record's metadata, once this package is imported.
    assert isinstance(Serializer(type="qiskit-runtime-json"), RuntimeJSONSerializer)


def test_a_results_storage_key_is_made_from_the_job_id_alone() -> None:
    assert result_key("d1x2c3v4b5n6m7q8w9e0") == "qiskit-result-d1x2c3v4b5n6m7q8w9e0"
