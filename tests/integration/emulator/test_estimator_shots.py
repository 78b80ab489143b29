"""Estimator shots follow IBM's rules, and the metadata reports them as IBM does.

A pub's shots come from its precision, else ``default_shots``, else ``default_precision``
(``ceil(1/precision**2)``); with twirling on (by default: ``enable_measure`` at resilience levels
1 and 2) they are split into randomizations, and the product of ``num_randomizations`` and
``shots_per_randomization`` is what runs.
"""

from __future__ import annotations

from typing import Any

import pytest
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import EstimatorV2, QiskitRuntimeService

from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import SMALL_BACKEND, bell_for, post_job

pytestmark = pytest.mark.filterwarnings("ignore:The EstimatorV2 class is deprecated:DeprecationWarning")


@pytest.mark.parametrize(
    ("options", "precision", "shots", "randomizations", "target"),
    [
        # level 1 by default: measurement twirling, auto: 128 shots x 32 randomizations.
        ({}, None, 4096, 32, 0.015625),
        # default_shots overrides default_precision; auto: max(64, ceil(10000/32)) = 313, x 32.
        ({"default_shots": 10000}, None, 10016, 32, 0.01),
        # a pub's precision is obeyed over default_shots: 400 shots, 64 per randomization, x 7.
        ({"default_shots": 10000}, 0.05, 448, 7, 0.05),
        # the product of the twirling settings takes precedence over default_shots.
        (
            {"default_shots": 5000, "twirling": {"num_randomizations": 10, "shots_per_randomization": 100}},
            None,
            1000,
            10,
            5000**-0.5,
        ),
        # a fixed number of randomizations: ceil(4096/10) = 410 shots each.
        ({"twirling": {"num_randomizations": 10}}, None, 4100, 10, 0.015625),
        # a fixed size of randomization: ceil(4096/1000) = 5 randomizations.
        ({"twirling": {"shots_per_randomization": 1000}}, None, 5000, 5, 0.015625),
        # PEC: 64 shots per randomization.
        ({"resilience": {"pec_mitigation": True}, "default_shots": 1000}, None, 1024, 16, 1000**-0.5),
    ],
)
def test_a_pubs_shots_follow_the_twirling_settings(
    emulator: RunningEmulator,
    service: QiskitRuntimeService,
    options: dict[str, Any],
    precision: float | None,
    shots: int,
    randomizations: int,
    target: float,
) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend, measure=False)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)

    result = EstimatorV2(mode=backend, options=options).run([(circuit, observable, None, precision)]).result()

    metadata = result[0].metadata
    assert metadata["shots"] == shots
    assert metadata["num_randomizations"] == randomizations
    assert metadata["target_precision"] == pytest.approx(target)
    assert metadata["circuit_metadata"] == {}
    assert metadata["resilience"] == {}
    assert result.metadata["twirling"]["enable_measure"] is True
    assert result.metadata["version"] == 2


def test_without_twirling_the_shots_are_those_of_the_precision(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend, measure=False)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    estimator = EstimatorV2(mode=backend)
    estimator.options.resilience_level = 0

    result = estimator.run([(circuit, observable)], precision=0.1).result()

    assert result[0].metadata["shots"] == 100
    assert result[0].metadata.get("num_randomizations") is None
    assert result.metadata["twirling"]["enable_measure"] is False
    assert result.metadata["twirling"]["enable_gates"] is False
    assert result.metadata["resilience"]["measure_mitigation"] is False


def test_the_result_metadata_reports_the_settings_the_level_resolves(
    emulator: RunningEmulator, service: QiskitRuntimeService
) -> None:
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend, measure=False)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    estimator = EstimatorV2(mode=backend)
    estimator.options.resilience_level = 2
    estimator.options.dynamical_decoupling.enable = True
    estimator.options.dynamical_decoupling.sequence_type = "XY4"

    metadata = estimator.run([(circuit, observable)]).result().metadata

    assert metadata["twirling"] == {
        "enable_gates": True,
        "enable_measure": True,
        "num_randomizations": "auto",
        "shots_per_randomization": "auto",
        "strategy": "active-accum",
        "interleave_randomizations": True,
    }
    assert metadata["dynamical_decoupling"] == {
        "enable": True,
        "sequence_type": "XY4",
        "extra_slack_distribution": "middle",
        "scheduling_method": "alap",
    }
    assert metadata["resilience"] == {
        "measure_mitigation": True,
        "zne_mitigation": True,
        "pec_mitigation": False,
    }


@pytest.mark.parametrize(
    "params",
    [
        {"resilience_level": 3},
        {"options": {"default_shots": 0}},
        {"options": {"twirling": {"num_randomizations": 0}}},
        {"options": {"resilience": {"pec_mitigation": True, "zne_mitigation": True}}},
        {"options": {"no_such_option": 1}},
    ],
    ids=["level-3", "no-shots", "no-randomizations", "pec-and-zne", "unknown-option"],
)
def test_options_outside_ibms_schema_are_refused(
    emulator: RunningEmulator, service: QiskitRuntimeService, params: dict[str, Any]
) -> None:
    # The client refuses these itself; IBM's schema refuses them too, when another client sends them.
    backend = service.backend(SMALL_BACKEND)
    circuit = bell_for(backend, measure=False)
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    body = {
        "program_id": "estimator",
        "backend": SMALL_BACKEND,
        "params": {"pubs": [[circuit, observable]], "options": {}, "version": 2, **params},
    }

    response = post_job(emulator, body)

    assert response.status_code == 400, response.text
    assert emulator.jobs() == []
