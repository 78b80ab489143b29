"""The QPU budget's pure parts: its setting, the estimate, the scope and the refusal's message."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from prefect_qiskit_jobs import ConfigurationError, QPUBudgetExceeded
from prefect_qiskit_jobs.limits.budget import (
    JOB_OVERHEAD_SECONDS,
    QPU_BUDGET_VARIABLE,
    BudgetReading,
    QPUBudget,
    check,
    circuit_seconds,
    estimate_job_seconds,
    scope_for,
)
from prefect_qiskit_jobs.wait.display import run_progress

BACKEND = FakeManilaV2()


def bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.sx(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("120", QPUBudget(seconds=120)),
        ("120s", QPUBudget(seconds=120, scope="deployment")),
        ("10m:instance", QPUBudget(seconds=600, scope="instance")),
        ("1.5h:flow-run", QPUBudget(seconds=5400, scope="flow-run")),
    ],
)
def test_budget_text(text: str, budget: QPUBudget) -> None:
    assert QPUBudget.parse(text) == budget
    assert QPUBudget.from_settings({QPU_BUDGET_VARIABLE: text}) == budget


def test_no_setting_no_budget_and_a_bad_one_names_the_variable() -> None:
    assert QPUBudget.from_settings({}) is None
    with pytest.raises(ConfigurationError, match=QPU_BUDGET_VARIABLE):
        QPUBudget.from_settings({QPU_BUDGET_VARIABLE: "10m:everyone"})


def test_a_circuit_lasts_its_critical_path_of_the_targets_durations() -> None:
    target = BACKEND.target
    path = target["sx"][(0,)].duration + target["cx"][(0, 1)].duration + target["measure"][(1,)].duration

    assert circuit_seconds(bell(), target) == pytest.approx(path)


def test_the_estimate_grows_with_shots_and_pubs_over_a_fixed_overhead() -> None:
    one = estimate_job_seconds([SamplerPub.coerce(bell(), 1000)], BACKEND)
    more_shots = estimate_job_seconds([SamplerPub.coerce(bell(), 4000)], BACKEND)
    two_pubs = estimate_job_seconds([SamplerPub.coerce(bell(), 1000)] * 2, BACKEND)
    per_shot = circuit_seconds(bell(), BACKEND.target) + BACKEND.configuration().default_rep_delay

    assert one == pytest.approx(JOB_OVERHEAD_SECONDS + 1000 * per_shot, abs=1e-3)
    assert more_shots - JOB_OVERHEAD_SECONDS == pytest.approx(4 * (one - JOB_OVERHEAD_SECONDS), abs=1e-3)
    assert two_pubs - JOB_OVERHEAD_SECONDS == pytest.approx(2 * (one - JOB_OVERHEAD_SECONDS), abs=1e-3)


def test_default_shots_and_estimator_precision_set_the_shots() -> None:
    sampler = estimate_job_seconds([SamplerPub.coerce(bell())], BACKEND, {"default_shots": 1000})
    unmeasured = bell().remove_final_measurements(inplace=False)
    estimator = estimate_job_seconds([EstimatorPub.coerce((unmeasured, "ZZ"), precision=0.1)], BACKEND)

    assert sampler == estimate_job_seconds([SamplerPub.coerce(bell(), 1000)], BACKEND)
    assert JOB_OVERHEAD_SECONDS < estimator < estimate_job_seconds([SamplerPub.coerce(bell(), 200)], BACKEND)


def test_a_deployment_budget_falls_back_to_the_flow_run() -> None:
    budget = QPUBudget(seconds=60)
    run = ["prefect-flow-run:r1"]

    assert scope_for(budget, [*run, "prefect-deployment:d1"]).tag == "prefect-deployment:d1"
    assert scope_for(budget, run).label == "flow run r1"
    assert scope_for(QPUBudget(seconds=60, scope="instance"), run).tag is None


def test_the_refusal_says_budget_spent_and_estimate() -> None:
    scope = scope_for(QPUBudget(seconds=60), ["prefect-deployment:d1"])
    check(scope, spent=50.0, estimate=10.0)  # exactly at the budget: allowed

    with pytest.raises(QPUBudgetExceeded) as refused:
        check(scope, spent=50.0, estimate=10.5)

    message = str(refused.value)
    assert "deployment d1" in message
    assert "budget 60 s, spent 50.000 s" in message
    assert "estimate 10.500 s" in message
    assert (refused.value.budget_seconds, refused.value.spent_seconds) == (60.0, 50.0)


def test_the_board_progress_ends_with_the_budget_line() -> None:
    reading = BudgetReading("deployment d1", budget_seconds=120.0, spent_seconds=30.25)
    rows = [{"status": "DONE", "job id": "j1"}]

    _, with_budget = run_progress(rows, reading.line())
    _, without = run_progress(rows)

    assert with_budget.splitlines()[-1].startswith(
        "QPU budget (deployment d1): 120 s, spent 30.250 s, 89.750 s left"
    )
    assert "QPU budget" not in without
