"""The executor-based Sampler and Estimator (program ``executor``), chosen with ``primitive_api``.

An executor job goes through the same tasks as a V2 job: submit, wait, fetch, stored result; the
stored result is the same ``PrimitiveResult`` the V2 job gives, within shot noise.
"""

from __future__ import annotations

from typing import Any

import pytest
from prefect import flow
from qiskit import QuantumCircuit
from qiskit.primitives import PrimitiveResult
from qiskit.quantum_info import SparsePauliOp

from prefect_qiskit_jobs import (
    InvalidJobInputError,
    JobRef,
    JobStatus,
    Primitive,
    PrimitiveApi,
    fetch_job_result,
    read_job_result,
    submit_estimator_job,
    submit_sampler_job,
    wait_for_jobs,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import FAST_POLL, SMALL_BACKEND, counts_of

SHOTS = 2000
# Five standard deviations of a 50/50 share of SHOTS shots.
SHARE_TOLERANCE = 5 * (0.25 / SHOTS) ** 0.5


def _share_00(counts: dict[str, int]) -> float:
    return counts.get("00", 0) / sum(counts.values())


def test_an_executor_sampler_job_gives_the_v2_sampler_counts(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    def both() -> dict[str, Any]:
        jobs = {
            api: submit_sampler_job(
                [bell_isa], backend=SMALL_BACKEND, options={"default_shots": SHOTS}, primitive_api=api
            )
            for api in ("v2", "executor")
        }
        finals = wait_for_jobs(list(jobs.values()), poll=FAST_POLL)
        results = {api: fetch_job_result(job) for api, job in jobs.items()}
        return {"jobs": jobs, "finals": finals, "results": results}

    out = both()
    executor_job: JobRef = out["jobs"]["executor"]

    assert executor_job.primitive is Primitive.SAMPLER
    assert executor_job.primitive_api is PrimitiveApi.EXECUTOR
    assert out["jobs"]["v2"].primitive_api is PrimitiveApi.V2
    assert JobRef.model_validate_json(executor_job.model_dump_json()) == executor_job
    assert [final.status for final in out["finals"]] == [JobStatus.DONE, JobStatus.DONE]
    programs = {job["id"]: job["program_id"] for job in emulator.jobs()}
    assert programs == {out["jobs"]["v2"].job_id: "sampler", executor_job.job_id: "executor"}

    v2, executor = (counts_of(out["results"][api]) for api in ("v2", "executor"))
    for counts in (v2, executor):
        assert sum(counts.values()) == SHOTS
        assert counts.get("00", 0) + counts.get("11", 0) >= 0.85 * SHOTS, counts
    assert abs(_share_00(executor) - _share_00(v2)) < SHARE_TOLERANCE, (v2, executor)

    stored = read_job_result(executor_job)
    assert isinstance(stored, PrimitiveResult)
    assert counts_of(stored) == executor
    assert counts_of(read_job_result(executor_job.job_id)) == executor


def test_an_executor_estimator_job_gives_the_v2_expectation_values(emulator: RunningEmulator) -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    from qiskit import transpile
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    isa = transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)
    observables = [SparsePauliOp(label).apply_layout(isa.layout) for label in ("ZZ", "XX", "ZI")]
    pubs = [(isa, observables)]

    @flow
    def both() -> dict[str, Any]:
        jobs = {
            api: submit_estimator_job(
                pubs, backend=SMALL_BACKEND, options={"default_precision": 0.02}, primitive_api=api
            )
            for api in (PrimitiveApi.V2, PrimitiveApi.EXECUTOR)
        }
        wait_for_jobs(list(jobs.values()), poll=FAST_POLL)
        return {"jobs": jobs, "results": {api: fetch_job_result(job) for api, job in jobs.items()}}

    out = both()
    executor_job: JobRef = out["jobs"][PrimitiveApi.EXECUTOR]
    assert (executor_job.primitive, executor_job.primitive_api) == (
        Primitive.ESTIMATOR,
        PrimitiveApi.EXECUTOR,
    )

    v2 = out["results"][PrimitiveApi.V2][0].data
    executor = out["results"][PrimitiveApi.EXECUTOR][0].data
    assert executor.evs.shape == executor.stds.shape == v2.evs.shape == (3,)
    assert 0.8 < executor.evs[0] <= 1.05, executor.evs  # <ZZ> of a Bell state is 1
    assert 0.8 < executor.evs[1] <= 1.05, executor.evs  # and so is <XX>
    assert abs(executor.evs[2]) < 0.15, executor.evs  # <ZI> is 0
    # Both estimate the same values: within five of their combined standard errors (and the noise
    # V2 leaves unmitigated, which the executor's default measurement mitigation removes).
    bound = 5 * (executor.stds**2 + v2.stds**2) ** 0.5 + 0.1
    assert (abs(executor.evs - v2.evs) < bound).all(), (executor.evs, v2.evs)

    stored = read_job_result(executor_job)
    assert isinstance(stored, PrimitiveResult)
    assert (stored[0].data.evs == executor.evs).all()


def test_an_unknown_primitive_api_is_refused_before_anything_is_sent(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    @flow
    def attempt() -> None:
        submit_sampler_job([bell_isa], backend=SMALL_BACKEND, primitive_api="v3")

    with pytest.raises(InvalidJobInputError, match="primitive_api must be one of 'v2', 'executor'"):
        attempt()

    assert "POST /jobs" not in emulator.stats()["routes"]
    assert emulator.jobs() == []
