"""A process lists its instance's backends once, however many submits look one up at the same moment."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from prefect_qiskit_jobs import IBMQuantumCredentials, InvalidJobInputError
from prefect_qiskit_jobs.emulator import FaultRule, RunningEmulator
from prefect_qiskit_jobs.ibm.gateway import IQPGateway

from .conftest import SMALL_BACKEND

CALLERS = 20
LISTING_ROUTE = "GET /backends"
CONFIGURATION_ROUTE = "GET /backends/{name}/configuration"
OTHER_BACKEND = "ibm_nairobi"


def listings(emulator: RunningEmulator) -> int:
    return int(emulator.stats()["routes"].get(LISTING_ROUTE, 0))


def test_twenty_racing_lookups_list_the_backends_once(held: RunningEmulator) -> None:
    credentials = IBMQuantumCredentials.for_emulator(held)
    # The client lists the backends itself while it builds a service: count what that costs.
    IQPGateway(credentials).service()
    by_the_client = listings(held)
    held.reset()
    gateway = IQPGateway(credentials)
    start = threading.Barrier(CALLERS)

    def look_up(_: int) -> Any:
        start.wait()
        return gateway.backend(SMALL_BACKEND)

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        backends = list(pool.map(look_up, range(CALLERS)))

    assert listings(held) == by_the_client + 1
    assert {id(backend) for backend in backends} == {id(backends[0])}
    assert backends[0].name == SMALL_BACKEND


def test_a_second_backend_needs_no_second_listing_and_an_unknown_one_is_refused_by_name(
    held: RunningEmulator,
) -> None:
    gateway = IQPGateway(IBMQuantumCredentials.for_emulator(held))
    gateway.service()  # the client's own listing, while it is built
    held.reset()

    assert gateway.backend(SMALL_BACKEND).name == SMALL_BACKEND
    assert gateway.backend(OTHER_BACKEND).name == OTHER_BACKEND
    assert listings(held) == 1
    # A name missing from the listing is looked up afresh once (a backend added since), then refused.
    with pytest.raises(InvalidJobInputError, match=rf"'ibm_nowhere' does not exist.*{SMALL_BACKEND}"):
        gateway.backend("ibm_nowhere")
    assert listings(held) == 2


def test_a_lookup_refused_once_for_now_is_sent_again(held: RunningEmulator) -> None:
    """One 429 (no Retry-After, which the client does not retry) on the listing fails no lookup."""
    gateway = IQPGateway(IBMQuantumCredentials.for_emulator(held))
    gateway.service()
    held.set_faults(FaultRule(route=LISTING_ROUTE, rate_limit_no_header=1.0, limit=1))

    assert gateway.backend(SMALL_BACKEND).name == SMALL_BACKEND
    assert held.stats()["faults"][LISTING_ROUTE] == {"rate_limit_no_header": 1}


def test_a_backend_whose_configuration_read_was_refused_is_not_called_unknown(
    held: RunningEmulator,
) -> None:
    """The client leaves out a backend whose configuration drew a 429; the lookup reads it again."""
    credentials = IBMQuantumCredentials.for_emulator(held)
    backends = len(IQPGateway(credentials).service().backends())  # a gateway of its own: its cache
    gateway = IQPGateway(credentials)
    gateway.service()
    held.set_faults(FaultRule(route=CONFIGURATION_ROUTE, rate_limit_no_header=1.0, limit=backends))

    assert gateway.backend(SMALL_BACKEND).name == SMALL_BACKEND
    assert held.stats()["faults"][CONFIGURATION_ROUTE] == {"rate_limit_no_header": backends}
