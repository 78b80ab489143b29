"""An IAM token exchange refused for now (429) is exchanged again, never answered with the API key.

When its token request fails, the client sends the API key itself as its credential, which IBM's
runtime API refuses (401): a refused exchange must cost a wait, never an authentication error.
"""

from __future__ import annotations

import warnings

import pytest

from prefect_qiskit_jobs import IBMQuantumCredentials
from prefect_qiskit_jobs.emulator import FaultRule, RunningEmulator
from prefect_qiskit_jobs.ibm.gateway import IQPGateway

from .conftest import SMALL_BACKEND

TOKEN_ROUTE = "POST /iam/identity/token"


def test_a_refused_token_exchange_is_sent_again_and_the_key_is_never_shown(
    held: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = IQPGateway(IBMQuantumCredentials.for_emulator(held))
    # The first exchange of the REST client's, and of the service's, each refused once.
    held.set_faults(FaultRule(route=TOKEN_ROUTE, rate_limit_no_header=1.0, limit=1))
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        assert gateway.list_jobs() == []
        held.set_faults(FaultRule(route=TOKEN_ROUTE, rate_limit_no_header=1.0, limit=1))
        assert gateway.backend(SMALL_BACKEND).name == SMALL_BACKEND

    assert held.stats()["faults"][TOKEN_ROUTE] == {"rate_limit_no_header": 2}
    shown = caplog.text + "".join(str(w.message) for w in warned)
    assert held.api_key not in shown
