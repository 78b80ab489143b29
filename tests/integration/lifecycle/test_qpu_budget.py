"""QPU-time budgets: IBM's own 409 at the instance's usage limit, and the package's budgets, checked
before a job is created, so that going over creates nothing.

The emulator charges each completed job a fixed ``JOB_SECONDS`` of QPU time, so what was spent is
known exactly; POSTs are counted at the emulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from prefect import flow

from prefect_qiskit_jobs import IBMQuantumCredentials, QiskitJobsError, QPUBudgetExceeded, submit_sampler_job
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import OPTIONS, SMALL_BACKEND

JOB_SECONDS = 4.0
EmulatorFactory = Callable[..., RunningEmulator]


def posts(emulator: RunningEmulator) -> int:
    count: int = emulator.stats()["routes"].get("POST /jobs", 0)
    return count


def test_ibm_refusing_a_job_at_the_instance_usage_limit_is_a_budget_error_and_not_retried(
    make_emulator: EmulatorFactory, bell_isa: Any
) -> None:
    emulator = make_emulator(backends=("manila",), usage_limit_seconds=0, job_qpu_seconds=JOB_SECONDS)
    credentials = IBMQuantumCredentials.for_emulator(emulator)

    @flow
    def one_job() -> None:
        submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS)

    with pytest.raises(QPUBudgetExceeded, match="Usage exceeds instance limit") as refused:
        one_job()

    assert isinstance(refused.value, QiskitJobsError)
    assert "nothing was submitted" in str(refused.value)
    assert posts(emulator) == 1  # one refused POST: no retry, by the task or the client
    assert emulator.jobs() == []
