"""Bad input fails before any job is sent, with a message that says what to change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from prefect import flow
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from prefect_qiskit_jobs import (
    ConfigurationError,
    IBMQuantumCredentials,
    InvalidJobInputError,
    IQPAuthenticationError,
    JobRef,
    await_for_job,
    await_for_jobs,
    fetch_job_result,
    submit_estimator_job,
    submit_sampler_job,
)
from prefect_qiskit_jobs.emulator import RunningEmulator

from .conftest import OPTIONS, SMALL_BACKEND

WRONG_KEY = "tok-WRONG-0987654321"


def isa(circuit: QuantumCircuit) -> QuantumCircuit:
    out: QuantumCircuit = transpile(circuit, backend=FakeManilaV2(), optimization_level=1, seed_transpiler=7)
    return out


def unmeasured_bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    return isa(circuit)


def raw_bell() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return circuit


def seven_qubits() -> QuantumCircuit:
    circuit = QuantumCircuit(7)
    circuit.h(0)
    circuit.measure_all()
    return circuit


def unbound() -> QuantumCircuit:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.measure_all()
    return isa(circuit)


BAD_SUBMITS: dict[str, tuple[Callable[[QuantumCircuit], dict[str, Any]], str]] = {
    "unknown backend": (
        lambda bell: {"pubs": [bell], "backend": "ibm_atlantis"},
        "Backend 'ibm_atlantis' does not exist on this instance; available: ibm_boston, ibm_brisbane, "
        "ibm_fez, ibm_kingston, ibm_marrakesh, ibm_nairobi, ibm_pittsburgh, ibm_torino, ibmq_manila",
    ),
    "not transpiled": (
        lambda _bell: {"pubs": [raw_bell()]},
        r"not in ibmq_manila's instruction set \(not ISA\).*Transpile it first",
    ),
    "too wide": (
        lambda _bell: {"pubs": [seven_qubits()]},
        "the circuit has 7 qubits but ibmq_manila has 5",
    ),
    "unbound parameters": (
        lambda _bell: {"pubs": [unbound()]},
        r"The number of values \(0\) does not match the number of parameters \(1\)",
    ),
    "no measurements": (
        lambda _bell: {"pubs": [unmeasured_bell()]},
        r"the circuit measures nothing; add measure_all\(\)",
    ),
    "zero shots in a pub": (
        lambda bell: {"pubs": [(bell, None, 0)]},
        "shots must be positive",
    ),
    "negative default shots": (
        lambda bell: {"pubs": [bell], "options": {"default_shots": -5}},
        "default_shots must be a positive integer, not -5",
    ),
    "no pubs": (
        lambda _bell: {"pubs": []},
        "No pubs given: pass at least one circuit",
    ),
}


def in_a_flow(call: Callable[[], Any]) -> Any:
    """Run ``call`` in a flow run, where users call these tasks."""
    return flow(call, name="attempt")()


def assert_nothing_submitted(emulator: RunningEmulator) -> None:
    assert "POST /jobs" not in emulator.stats()["routes"]
    assert emulator.jobs() == []


@pytest.mark.parametrize("case", list(BAD_SUBMITS))
def test_a_bad_sampler_submit_fails_before_anything_is_sent(
    case: str, emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    build, message = BAD_SUBMITS[case]
    arguments = {"backend": SMALL_BACKEND, "options": OPTIONS, **build(bell_isa)}

    with pytest.raises(InvalidJobInputError, match=message):
        in_a_flow(lambda: submit_sampler_job(**arguments))

    assert_nothing_submitted(emulator)


def test_a_bad_estimator_precision_fails_before_anything_is_sent(emulator: RunningEmulator) -> None:
    circuit = unmeasured_bell()
    observable = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    pubs = [(circuit, observable)]

    with pytest.raises(InvalidJobInputError, match="default_precision must be positive, not 0"):
        in_a_flow(lambda: submit_estimator_job(pubs, backend=SMALL_BACKEND, options={"default_precision": 0}))

    assert_nothing_submitted(emulator)


def with_zz(circuit: QuantumCircuit, coefficient: float = 1.0) -> tuple[QuantumCircuit, SparsePauliOp]:
    return circuit, SparsePauliOp(["ZZ"], coeffs=[coefficient]).apply_layout(circuit.layout)


BAD_ESTIMATES: dict[str, tuple[Callable[[], list[Any]], str]] = {
    "NaN observable": (lambda: [with_zz(unmeasured_bell(), float("nan"))], "the observables contain NaN"),
    "infinite observable": (
        lambda: [(unmeasured_bell(), {"IIIZZ": float("inf")})],
        "the observables contain NaN or infinity",
    ),
    "NaN parameter value": (
        lambda: [(unbound().remove_final_measurements(inplace=False), "Z" + "I" * 4, [float("nan")])],
        "the parameter values contain NaN or infinity",
    ),
    "observable of the wrong width": (
        lambda: [(unmeasured_bell(), SparsePauliOp("ZZ"))],
        r"circuit \(5\) does not match the number of qubits of the \(\)-th observable \(2\)\. "
        r"Lay the observable out as the circuit: observable\.apply_layout",
    ),
    "not transpiled": (
        lambda: [(raw_bell().remove_final_measurements(inplace=False), SparsePauliOp("ZZ"))],
        r"not in ibmq_manila's instruction set \(not ISA\)",
    ),
    "no pubs": (list, "No pubs given"),
}


@pytest.mark.parametrize("case", list(BAD_ESTIMATES))
def test_a_bad_estimator_submit_fails_before_anything_is_sent(case: str, emulator: RunningEmulator) -> None:
    build, message = BAD_ESTIMATES[case]
    pubs = build()

    with pytest.raises(InvalidJobInputError, match=message):
        in_a_flow(lambda: submit_estimator_job(pubs, backend=SMALL_BACKEND))

    assert_nothing_submitted(emulator)


def test_a_credentials_block_that_does_not_exist_is_named_before_anything_is_sent(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    with pytest.raises(ConfigurationError, match="no-such-credentials"):
        in_a_flow(
            lambda: submit_sampler_job([bell_isa], backend=SMALL_BACKEND, credentials="no-such-credentials")
        )

    assert emulator.stats()["routes"] == {}


MALFORMED = "not a job id!"
JOB_ID_MESSAGE = f"'{MALFORMED}' is not an IBM Quantum job id: 8 to 64 letters, digits"


async def test_a_malformed_job_id_is_refused_before_any_request(emulator: RunningEmulator) -> None:
    @flow
    async def malformed() -> None:
        with pytest.raises(InvalidJobInputError, match=JOB_ID_MESSAGE):
            fetch_job_result(MALFORMED)
        with pytest.raises(InvalidJobInputError, match=JOB_ID_MESSAGE):
            await await_for_job(MALFORMED)
        with pytest.raises(InvalidJobInputError, match=JOB_ID_MESSAGE):
            await await_for_jobs([MALFORMED])

    await malformed()
    with pytest.raises(pydantic.ValidationError, match=JOB_ID_MESSAGE):
        JobRef(job_id=MALFORMED, backend=SMALL_BACKEND, primitive="sampler")

    assert emulator.stats()["routes"] == {}


def test_missing_credentials_say_how_to_give_them(
    emulator: RunningEmulator, bell_isa: QuantumCircuit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QISKIT_IBM_TOKEN")
    monkeypatch.delenv("QISKIT_IBM_INSTANCE")

    with pytest.raises(ConfigurationError, match="set QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE"):
        in_a_flow(lambda: submit_sampler_job([bell_isa], backend=SMALL_BACKEND, options=OPTIONS))

    assert emulator.stats()["routes"] == {}


def test_a_wrong_api_key_is_an_authentication_error_that_does_not_repeat_the_key(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    credentials = IBMQuantumCredentials.for_emulator(emulator, api_key=WRONG_KEY)

    with pytest.raises(IQPAuthenticationError, match="IBM Cloud refused the API key") as raised:
        in_a_flow(
            lambda: submit_sampler_job(
                [bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS
            )
        )

    assert WRONG_KEY not in str(raised.value)
    assert_nothing_submitted(emulator)


# When IAM refuses the key the client warns, then sends the key itself; the runtime API refuses it.
@pytest.mark.filterwarnings("ignore:Unable to retrieve IBM Cloud access token:UserWarning")
async def test_a_wrong_api_key_fails_a_wait_with_an_authentication_error(emulator: RunningEmulator) -> None:
    credentials = IBMQuantumCredentials.for_emulator(emulator, api_key=WRONG_KEY)

    @flow
    async def wait_with_a_wrong_key() -> None:
        await await_for_job("d0000000000000000000", credentials=credentials)

    with pytest.raises(IQPAuthenticationError, match="IBM refused the credentials") as raised:
        await wait_with_a_wrong_key()

    assert WRONG_KEY not in str(raised.value)
    assert_nothing_submitted(emulator)


def test_an_instance_the_key_cannot_open_is_a_configuration_error(
    emulator: RunningEmulator, bell_isa: QuantumCircuit
) -> None:
    credentials = IBMQuantumCredentials.for_emulator(emulator).model_copy(
        update={"instance": "crn:v1:bluemix:public:quantum-computing:us-east:a/other::other-instance"}
    )

    with pytest.raises(ConfigurationError, match="does not have access to the instance"):
        in_a_flow(
            lambda: submit_sampler_job(
                [bell_isa], backend=SMALL_BACKEND, credentials=credentials, options=OPTIONS
            )
        )

    assert_nothing_submitted(emulator)
