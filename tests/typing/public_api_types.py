"""Checked by mypy --strict and by pyright (see ``tests/unit/test_typing.py``); pytest never imports it.

Each line pins what an editor shows for a public name; a name whose type degrades to ``Any``
fails ``assert_type``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from qiskit import QuantumCircuit
from qiskit.primitives import PrimitiveResult

import prefect_qiskit_jobs as pqj
from prefect_qiskit_jobs import JobRef, JobSnapshot, ResultNotStoredError
from prefect_qiskit_jobs.wait.deferral import ResumerCycle

circuit = QuantumCircuit(2)
observables = "ZZ"


def sync_calls() -> None:
    assert_type(pqj.submit_sampler_job([circuit], backend="b"), JobRef)
    assert_type(pqj.submit_sampler_jobs([circuit], backend="b"), list[JobRef])
    assert_type(pqj.submit_estimator_job([(circuit, observables)], backend="b"), JobRef)
    assert_type(pqj.submit_estimator_jobs([(circuit, observables)], backend="b"), list[JobRef])
    job = pqj.submit_sampler_job(circuit, backend="b", options={"default_shots": 10})
    assert_type(pqj.wait_for_job(job), JobSnapshot)
    assert_type(pqj.wait_for_jobs([job, "d1x2c3v4b5n6m7q8w9e0"]), list[JobSnapshot])
    assert_type(pqj.fetch_job_result(job), PrimitiveResult[Any])
    assert_type(pqj.fetch_job_results([job]), list[PrimitiveResult[Any]])
    assert_type(pqj.read_job_result(job), PrimitiveResult[Any])
    assert_type(pqj.run_sampler([circuit], backend="b"), PrimitiveResult[Any])
    assert_type(pqj.run_estimator([(circuit, observables)], backend="b"), PrimitiveResult[Any])
    assert_type(pqj.result_key(job), str)
    assert_type(pqj.resolve_credentials(None), pqj.IBMQuantumCredentials)
    assert_type(pqj.resume_cycle(), ResumerCycle)
    assert_type(pqj.run_resumer(once=True), None)
    assert_type(pqj.suspend_until_final([job]), list[JobSnapshot])
    assert_type(pqj.ibm_batch("b"), pqj.IBMQuantumSession)
    assert_type(pqj.ibm_session("b"), pqj.IBMQuantumSession)

    assert_type(ResultNotStoredError("d1x2c3v4b5n6m7q8w9e0", "storage").job_id, str)
    assert_type(pqj.QPUBudgetExceeded("over").budget_seconds, float | None)
    assert_type(pqj.QPUBudget.parse("2m:instance"), pqj.QPUBudget)

    policy = pqj.IBMJobCache(key_storage="cache-keys")
    assert_type(policy, pqj.IBMJobCache)


async def async_calls() -> None:
    job = await pqj.asubmit_sampler_job([circuit], backend="b")
    assert_type(job, JobRef)
    assert_type(await pqj.asubmit_sampler_jobs([circuit], backend="b"), list[JobRef])
    assert_type(await pqj.asubmit_estimator_job([(circuit, observables)], backend="b"), JobRef)
    assert_type(await pqj.asubmit_estimator_jobs([(circuit, observables)], backend="b"), list[JobRef])
    pending: Coroutine[Any, Any, JobSnapshot] = pqj.await_for_job(job)
    assert_type(await pending, JobSnapshot)
    assert_type(await pqj.await_for_jobs([job]), list[JobSnapshot])
    assert_type(await pqj.afetch_job_result(job), PrimitiveResult[Any])
    assert_type(await pqj.afetch_job_results([job]), list[PrimitiveResult[Any]])
    assert_type(await pqj.aread_job_result(job), PrimitiveResult[Any])
    assert_type(await pqj.arun_sampler([circuit], backend="b"), PrimitiveResult[Any])
    assert_type(await pqj.arun_estimator([(circuit, observables)], backend="b"), PrimitiveResult[Any])
    assert_type(await pqj.aresolve_credentials("ibm-quantum"), pqj.IBMQuantumCredentials)
    assert_type(await pqj.aresume_cycle(), ResumerCycle)
    assert_type(await pqj.asuspend_until_final([job]), list[JobSnapshot])
