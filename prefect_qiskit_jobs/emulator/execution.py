"""Checking and running primitive jobs: the client's wire format in, a ``PrimitiveResult`` out.

Pubs are decoded with the client's own ``RuntimeDecoder``, checked against the device's target
with the client's own ISA check, and run by Aer's backend primitives on a simulator carrying the
fake device's noise model, each on the qubits its circuit touches (``subdevice``; Estimator pubs
see ``estimation``). Everything here is blocking and runs on worker threads.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError
from qiskit.primitives import BackendSamplerV2, PrimitiveResult, SamplerPubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit_ibm_runtime import RuntimeDecoder, RuntimeEncoder
from qiskit_ibm_runtime.execution_span import ExecutionSpans, SliceSpan
from qiskit_ibm_runtime.utils.utils import is_isa_circuit

from .estimation import estimate
from .estimator_options import EstimatorSettings
from .subdevice import reduce_circuit, touched_qubits

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

    from .catalog import Device

PROGRAMS = ("sampler", "estimator", "executor")
DEFAULT_SHOTS = 4096
MAX_SHOTS = 10_000_000


class InvalidJob(ValueError):
    """The job cannot run as sent: IBM answers 400 with error code 1002 and creates no job."""


@dataclass(frozen=True)
class DecodedJob:
    """A job's pubs coerced into qiskit's pub containers, with the options that shape a run."""

    program_id: str
    pubs: tuple[SamplerPub | EstimatorPub, ...]
    options: dict[str, Any]
    estimator: EstimatorSettings | None = None


# QPY decoding is not thread-safe on CPython 3.11 (concurrent decodes intermittently fail with
# "AST constructor recursion depth mismatch"), and requests and executions decode on threads.
_DECODE_LOCK = threading.Lock()


def decode_params(program_id: str, params_json: str) -> DecodedJob:
    """Decode and coerce the ``params`` object of a job; raises ``InvalidJob`` when malformed."""
    if program_id not in PROGRAMS:
        raise InvalidJob(f"Program {program_id!r} is not supported; use one of {', '.join(PROGRAMS)}.")
    try:
        with _DECODE_LOCK:
            params = json.loads(params_json, cls=RuntimeDecoder)
    except Exception as exc:
        raise InvalidJob(f"The job parameters could not be decoded: {exc}") from None
    if not isinstance(params, dict) or not isinstance(params.get("pubs"), list) or not params["pubs"]:
        raise InvalidJob("The job parameters must hold a non-empty list of pubs.")
    options = params.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidJob("The job options must be an object.")
    pubs: list[SamplerPub | EstimatorPub] = []
    for index, raw in enumerate(params["pubs"]):
        try:
            pubs.append(_coerce_pub(program_id, raw))
        except InvalidJob:
            raise
        except Exception as exc:
            raise InvalidJob(f"Pub {index} is malformed: {exc}") from None
    estimator = _estimator_settings(params_json) if program_id == "estimator" else None
    return DecodedJob(program_id, tuple(pubs), options, estimator)


def _estimator_settings(params_json: str) -> EstimatorSettings:
    """The Estimator's options held to IBM's schema, which refuses what it does not know."""
    try:
        return EstimatorSettings.from_params(json.loads(params_json))
    except ValidationError as exc:
        raise InvalidJob(f"The estimator options do not match IBM's schema: {exc}") from None


def _coerce_pub(program_id: str, raw: Any) -> SamplerPub | EstimatorPub:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise InvalidJob("Each pub must be a list starting with a circuit.")
    items = list(raw)
    circuit = items[0]
    values = items[2] if program_id == "estimator" and len(items) > 2 else None
    if program_id == "sampler" and len(items) > 1:
        values = items[1]
    _check_bound(circuit, values)
    if values is not None and np.asarray(values).size == 0:
        items[2 if program_id == "estimator" else 1] = None
    if program_id == "sampler":
        return SamplerPub.coerce(tuple(items))
    return EstimatorPub.coerce(tuple(items))


def _check_bound(circuit: Any, values: Any) -> None:
    num_parameters = getattr(circuit, "num_parameters", None)
    if num_parameters is None:
        raise InvalidJob("Each pub must start with a quantum circuit.")
    given = 0 if values is None else int(np.asarray(values).shape[-1] if np.ndim(values) else 0)
    if num_parameters and given != num_parameters:
        names = ", ".join(p.name for p in circuit.parameters)
        raise InvalidJob(
            f"The circuit has {num_parameters} unbound parameters ({names}) but {given} values were given."
        )


def validate(job: DecodedJob, device: Device) -> None:
    """Reject what the device cannot run: too wide, not ISA, absurd shots or precision."""
    for index, pub in enumerate(job.pubs):
        check_circuit(f"Pub {index}", pub.circuit, device)
        if isinstance(pub, SamplerPub) and pub.shots is not None and not 0 < pub.shots <= MAX_SHOTS:
            raise InvalidJob(f"Pub {index}: shots must be between 1 and {MAX_SHOTS}, not {pub.shots}.")
        if isinstance(pub, EstimatorPub) and pub.precision is not None and not pub.precision > 0:
            raise InvalidJob(f"Pub {index}: precision must be positive, not {pub.precision}.")


def check_circuit(where: str, circuit: QuantumCircuit, device: Device) -> None:
    """Reject a circuit wider than the device or not in its instruction set (IBM's ISA check)."""
    if circuit.num_qubits > device.num_qubits:
        raise InvalidJob(
            f"{where}: the circuit has {circuit.num_qubits} qubits but {device.name} has {device.num_qubits}."
        )
    message = is_isa_circuit(circuit, device.target)
    if message:
        raise InvalidJob(
            f"{where}: circuits that do not match the target hardware definition (non-ISA) "
            f"are not supported: {message}"
        )


def run(job: DecodedJob, device: Device, seed: int | None = None) -> PrimitiveResult[Any]:
    """Execute the pubs on the device's noisy simulator (Estimator pubs on their touched qubits)."""
    if job.program_id == "sampler":
        shots = job.options.get("default_shots") or DEFAULT_SHOTS
        started = datetime.now(timezone.utc)
        results = [_sample(pub, device, shots, seed) for pub in job.pubs]  # type: ignore[arg-type]
        return with_execution_spans(PrimitiveResult(results), started, datetime.now(timezone.utc))
    assert job.estimator is not None
    return estimate(job.pubs, device, job.estimator, seed)  # type: ignore[arg-type]


def _sample(pub: SamplerPub, device: Device, shots: int, seed: int | None) -> SamplerPubResult:
    """One pub on the sub-device of its touched qubits: the same bits, read from the same noise."""
    touched = touched_qubits(pub.circuit)
    reduced = SamplerPub(reduce_circuit(pub.circuit, touched), pub.parameter_values, pub.shots)
    sampler = BackendSamplerV2(
        backend=device.simulator(touched), options={"default_shots": shots, "seed_simulator": seed}
    )
    (result,) = sampler.run([reduced]).result()
    return result


def with_execution_spans(
    result: PrimitiveResult[Any], start: datetime, stop: datetime
) -> PrimitiveResult[Any]:
    """A Sampler result carries, as IBM's does, when each part of each pub's data was taken.

    Aer runs everything at once, so one span covers every shot of every pub.
    """
    slices = {
        index: (
            (*pub.data.shape, pub.metadata["shots"]),
            slice(0, math.prod(pub.data.shape) * pub.metadata["shots"]),
        )
        for index, pub in enumerate(result)
    }
    spans = ExecutionSpans([SliceSpan(start, stop, slices)])
    metadata = {**result.metadata, "execution": {"execution_spans": spans}, "version": 2}
    return PrimitiveResult(list(result), metadata=metadata)


def encode_result(result: PrimitiveResult[Any]) -> str:
    """The body of ``GET /jobs/{id}/results``, as IBM sends it."""
    return json.dumps(result, cls=RuntimeEncoder)


def check(program_id: str, params_json: str, device: Device) -> None:
    """What ``POST /jobs`` checks before it creates a job of any program; raises ``InvalidJob``."""
    if program_id == "executor":
        from . import executor_program

        executor_program.check(params_json, device)
        return
    validate(decode_params(program_id, params_json), device)


def execute(program_id: str, params_json: str, device: Device, seed: int | None = None) -> str:
    """Run a job of any program (a dry run on a mock twin); the body of its ``GET /jobs/{id}/results``."""
    if device.mock:
        from . import dry_run

        return dry_run.execute(program_id, params_json, device, seed)
    if program_id == "executor":
        from . import executor_program

        return executor_program.execute(params_json, device, seed)
    return encode_result(run(decode_params(program_id, params_json), device, seed))
