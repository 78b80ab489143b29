"""The gateway turns the client's transport failures into the package's transient error.

A dropped connection or a timeout under the client (found by the chaos benchmark: a raw
``requests`` error ended a run, a hung instance lookup became a configuration error) is IBM
being unreachable for now: ``IQPUnavailableError``, which submits and fetches retry.
"""

from __future__ import annotations

import pytest
import requests
from pydantic import SecretStr
from qiskit_ibm_runtime.accounts.exceptions import AccountsError

from prefect_qiskit_jobs import IBMQuantumCredentials, IQPUnavailableError
from prefect_qiskit_jobs.ibm.gateway import IQPGateway

TOKEN = "tok-SECRET-1234567890"


@pytest.fixture
def gateway() -> IQPGateway:
    return IQPGateway(IBMQuantumCredentials(token=SecretStr(TOKEN), instance="crn:v1:x"))


def lookup_timed_out() -> None:
    """What the client raises when its instance lookup's read timed out."""
    try:
        raise requests.exceptions.ReadTimeout("read timed out")
    except requests.exceptions.ReadTimeout as timeout:
        raise AccountsError("Unable to retrieve instances.") from timeout


def translated(gateway: IQPGateway, failure: Exception | None, connecting: bool = False) -> None:
    with gateway.translated("list jobs", connecting=connecting):
        if failure is None:
            lookup_timed_out()
        else:
            raise failure


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectionError(f"RemoteDisconnected while sending {TOKEN}"),
        requests.exceptions.ReadTimeout(f"read timed out ({TOKEN})"),
    ],
)
def test_a_transport_failure_is_ibm_unavailable_without_the_token(
    gateway: IQPGateway, failure: Exception
) -> None:
    with pytest.raises(IQPUnavailableError, match="could not be reached to list jobs") as raised:
        translated(gateway, failure)

    assert TOKEN not in str(raised.value)


def test_an_instance_lookup_that_timed_out_is_ibm_unavailable_not_a_setting(gateway: IQPGateway) -> None:
    with pytest.raises(IQPUnavailableError, match="could not be reached"):
        translated(gateway, None, connecting=True)
