"""IBM's JSON and the client's classes, mapped to this package's values: no I/O."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import qiskit_ibm_runtime
from dateutil import parser as dateparser
from qiskit.primitives import PrimitiveResult
from qiskit_ibm_runtime import EstimatorV2, SamplerV2
from qiskit_ibm_runtime.decoders.defaults import DEFAULT_DECODERS
from qiskit_ibm_runtime.decoders.result_decoder import ResultDecoder
from qiskit_ibm_runtime.utils.utils import is_isa_circuit

from prefect_qiskit_jobs.errors import (
    InvalidJobInputError,
)
from prefect_qiskit_jobs.models import JobSnapshot, JobStatus, Primitive, PrimitiveApi
from prefect_qiskit_jobs.results.serializer import DECODING

if TYPE_CHECKING:
    from qiskit.circuit import QuantumCircuit
    from qiskit.transpiler import Target


def primitive_class(primitive: Primitive, primitive_api: PrimitiveApi) -> type[Any]:
    """The client's class that submits ``primitive`` jobs through ``primitive_api``.

    Raises ``InvalidJobInputError`` when the installed client has no executor-based primitives.
    """
    if primitive_api is PrimitiveApi.V2:
        v2: type[Any] = SamplerV2 if primitive is Primitive.SAMPLER else EstimatorV2
        return v2
    module_name = f"qiskit_ibm_runtime.executor_{primitive.value}"
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise InvalidJobInputError(
            f"primitive_api='executor' needs qiskit-ibm-runtime 0.50 or later, whose {module_name} "
            f"this one (qiskit-ibm-runtime {qiskit_ibm_runtime.__version__}) lacks; use primitive_api='v2'"
        ) from None
    cls: type[Any] = getattr(module, primitive.value.title())
    return cls


def decode_result(raw: str, program_id: str | None) -> Any:
    """A job's result body, through the client's decoders for ``program_id`` (see ``result``)."""
    if program_id is None:
        parsed = json.loads(raw)
        program_id = "executor" if isinstance(parsed, dict) and "schema_version" in parsed else "sampler"
    decoders = DEFAULT_DECODERS.get(program_id, [ResultDecoder])
    with DECODING:
        result = functools.reduce(
            lambda data, decoder: decoder.decode(data) if decoder.is_applicable(data) else data, decoders, raw
        )
    if isinstance(result, PrimitiveResult) and dataclasses.is_dataclass(result.metadata.get("executor")):
        # The executor Sampler keeps the run's chunk timing as a dataclass, which the client's
        # encoder cannot write; as plain data the result is stored and read back as it came.
        metadata = {**result.metadata, "executor": dataclasses.asdict(result.metadata["executor"])}
        result = PrimitiveResult(list(result), metadata=metadata)
    return result


def snapshot_from_api(job: dict[str, Any]) -> JobSnapshot:
    """A ``JobSnapshot`` from IBM's job JSON (``GET /jobs/{id}`` or an entry of ``GET /jobs``)."""
    state = job.get("state") or {}
    reason_code = state.get("reason_code") or state.get("reasonCode")
    usage = job.get("usage") or {}
    wire_status = str(state.get("status") or job.get("status") or "")
    status = JobStatus.from_api(wire_status, reason_code)
    return JobSnapshot(
        job_id=job["id"],
        backend=job.get("backend"),
        primitive=(job.get("program") or {}).get("id"),
        status=status,
        unrecognised_status=wire_status if status is JobStatus.UNKNOWN else None,
        reason=state.get("reason"),
        reason_code=reason_code,
        created=_parse_time(job.get("created")),
        finished=_parse_time(job.get("ended")),
        quantum_seconds=_quantum_seconds(usage),
        estimated_running_seconds=_seconds(job.get("estimated_running_time_seconds")),
        tags=tuple(job.get("tags") or ()),
        session_id=job.get("session_id") or None,
    )


def apply_metrics(snapshot: JobSnapshot, metrics: dict[str, Any]) -> JobSnapshot:
    """Add what only ``/metrics`` tells: queue position, estimated start, run timestamps, usage."""
    stamps = metrics.get("timestamps") or {}
    usage = metrics.get("usage") or {}
    position = metrics.get("position_in_queue")
    return snapshot.model_copy(
        update={
            "position_in_queue": position if snapshot.status is JobStatus.QUEUED else None,
            "estimated_start": _parse_time(metrics.get("estimated_start_time")),
            "running": _parse_time(stamps.get("running")) or snapshot.running,
            "finished": _parse_time(stamps.get("finished")) or snapshot.finished,
            "quantum_seconds": _quantum_seconds(usage, snapshot.quantum_seconds),
        }
    )


def _quantum_seconds(usage: dict[str, Any], default: float | None = None) -> float | None:
    """QPU time as IBM reports it now (``qpu_charge_time_seconds``) or did (``quantum_seconds``)."""
    for name in ("qpu_charge_time_seconds", "quantum_seconds"):
        if usage.get(name) is not None:
            return float(usage[name])
    return default


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:  # the standard parser first: 50 times faster, and a listing holds thousands of stamps
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        try:
            parsed = dateparser.isoparse(str(value))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def isa_problem(circuit: QuantumCircuit, target: Target) -> str:
    """Why ``circuit`` is not ISA for ``target`` (the client's own check), or ``""``."""
    return str(is_isa_circuit(circuit, target))
