"""Submits and fetches are retried when IBM was unavailable, in sync and async tasks alike."""

from __future__ import annotations

import asyncio

import pytest
from prefect.states import Completed, Failed
from prefect.utilities.math import lower_clamp_multiple

from prefect_qiskit_jobs import InvalidJobInputError, IQPAuthenticationError, IQPUnavailableError
from prefect_qiskit_jobs.errors import RETRY_THROUGH_OUTAGES, is_transient


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (IQPUnavailableError("IBM Cloud could not be reached", None), True),
        (IQPUnavailableError("rate limited", 429, retry_after=3.0), True),
        (IQPAuthenticationError("IBM refused the credentials", 401), False),
        (InvalidJobInputError("the circuit has 7 qubits but ibmq_manila has 5"), False),
        (RuntimeError("anything else"), False),
    ],
)
def test_only_unavailability_is_retried_from_sync_and_async_tasks(error: Exception, retried: bool) -> None:
    state = Failed(data=error, message=str(error))

    async def from_an_async_task() -> bool:
        return is_transient(None, None, state)

    assert is_transient(None, None, state) is retried
    assert asyncio.run(from_an_async_task()) is retried


def test_a_completed_state_is_not_retried() -> None:
    assert is_transient(None, None, Completed(data=1)) is False


def test_the_retries_outlast_a_five_minute_outage() -> None:
    delays = RETRY_THROUGH_OUTAGES["retry_delay_seconds"]
    jitter = RETRY_THROUGH_OUTAGES["retry_jitter_factor"]

    assert len(delays) == RETRY_THROUGH_OUTAGES["retries"]
    assert sum(delays) * lower_clamp_multiple(1 + jitter) > 300  # the shortest the jitter makes them
