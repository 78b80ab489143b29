"""Fixtures for driving the emulator with the unmodified client, and for raw HTTP where the client refuses.

Beside the shared ``emulator`` of tests/conftest.py (no queue delay), two more are shared by the
whole run, and reset and pointed at for each test that asks: ``held``, whose queue never moves on
its own (one slot per backend, an hour's queue delay), so a test sees its jobs Queued for as long
as it likes and lets them run with ``release``; and ``slow``, the same but a released job stays
Running for ``SLOW_RUN_SECONDS``. Raw HTTP helpers speak to IAM and the runtime API the way the
client does, for the bad requests the client would never send.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from qiskit import QuantumCircuit, transpile
from qiskit_ibm_runtime import QiskitRuntimeService, RuntimeEncoder
from qiskit_ibm_runtime.api.rest.base import RestAdapterBase
from qiskit_ibm_runtime.ibm_backend import IBMBackend

from prefect_qiskit_jobs.emulator import EmulatorConfig, RunningEmulator, start_emulator

SMALL_BACKEND = "ibmq_manila"
HELD_QUEUE_DELAY = 3600.0
SLOW_RUN_SECONDS = 3.0
DEADLINE = 30.0  # seconds a state the emulator reaches by itself may take: only a defect reaches it
# The IBM-API-Version the installed client sends.
API_VERSION = RestAdapterBase._HEADER_API_VERSION["IBM-API-Version"]
# What the ``make_emulator`` fixture of tests/conftest.py hands out.
EmulatorFactory = Callable[..., RunningEmulator]


@pytest.fixture(scope="session")
def held_session_emulator() -> Iterator[RunningEmulator]:
    """An emulator whose jobs stay Queued until released: one slot per backend, an hour's delay."""
    with start_emulator(EmulatorConfig(queue_delay=HELD_QUEUE_DELAY, concurrency=1)) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def slow_session_emulator() -> Iterator[RunningEmulator]:
    """Like the held emulator, but a job stays Running at least ``SLOW_RUN_SECONDS`` once released."""
    config = EmulatorConfig(queue_delay=HELD_QUEUE_DELAY, concurrency=1, min_run_seconds=SLOW_RUN_SECONDS)
    with start_emulator(config) as emulator:
        yield emulator


@pytest.fixture
def slow(slow_session_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """The slow-running emulator, emptied, with the environment pointing at it."""
    slow_session_emulator.reset(jobs=True)
    point_environment_at(slow_session_emulator, monkeypatch)
    return slow_session_emulator


@pytest.fixture
def held(held_session_emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """The held-queue emulator, emptied, with the environment pointing at it."""
    held_session_emulator.reset(jobs=True)
    point_environment_at(held_session_emulator, monkeypatch)
    return held_session_emulator


def point_environment_at(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a bare ``QiskitRuntimeService()`` of this process talk to ``emulator``."""
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def service(emulator: RunningEmulator) -> QiskitRuntimeService:
    """A client of the shared emulator, built from the environment alone."""
    return QiskitRuntimeService()


def bell_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def bell_for(backend: IBMBackend, measure: bool = True) -> QuantumCircuit:
    """A Bell circuit transpiled to ``backend``'s ISA (without measurements for the estimator)."""
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    if measure:
        circuit.measure_all()
    isa: QuantumCircuit = transpile(circuit, backend=backend, optimization_level=1, seed_transpiler=7)
    return isa


# ----- raw HTTP, as the client would send it --------------------------------------------------
def http() -> requests.Session:
    """A requests session that ignores proxy settings: the emulator is on 127.0.0.1."""
    session = requests.Session()
    session.trust_env = False
    return session


def iam_token(emulator: RunningEmulator, api_key: str | None = None) -> str:
    """An access token from the emulator's IAM route, exchanged for an API key as the client does."""
    env = emulator.environment()
    response = http().post(
        env["IAM_URL"] + "/identity/token",
        data={"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": api_key or emulator.api_key},
        timeout=30,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def runtime_headers(emulator: RunningEmulator, token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Service-CRN": emulator.config.instance_crn,
        "IBM-API-Version": API_VERSION,
        "Content-Type": "application/json",
        "Accept": "application/json",
    }


def post_job(
    emulator: RunningEmulator, body: dict[str, Any] | str, token: str | None = None
) -> requests.Response:
    """``POST /jobs`` with ``body`` (a dict is encoded with the client's ``RuntimeEncoder``)."""
    data = body if isinstance(body, str) else json.dumps(body, cls=RuntimeEncoder)
    return http().post(
        emulator.environment()["QISKIT_IBM_URL"] + "/jobs",
        data=data,
        headers=runtime_headers(emulator, token or iam_token(emulator)),
        timeout=60,
    )


def sampler_body(backend: str, pubs: list[Any], **extra: Any) -> dict[str, Any]:
    """A sampler job body in the shape the client posts."""
    return {
        "program_id": "sampler",
        "backend": backend,
        "params": {"pubs": pubs, "options": {}, "version": 2, "support_qiskit": True},
        **extra,
    }


def eventually(read: Callable[[], Any], wanted: Callable[[Any], bool]) -> Any:
    """Read until ``wanted(value)`` holds and return that value; fail after ``DEADLINE`` seconds."""
    deadline = time.monotonic() + DEADLINE
    while not wanted(value := read()):
        assert time.monotonic() < deadline, f"still {value!r}"
        time.sleep(0.1)
    return value
