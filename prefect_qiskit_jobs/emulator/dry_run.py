"""Dry runs: jobs on a device's mock twin answer random data in the shape of a real result.

IBM documents that a dry run's results "preserve the expected schema but contain randomized mock
data rather than actual or simulated measurement results", so nothing is simulated: a Sampler pub
gets uniformly random bits, an Estimator pub random values with IBM's metadata for the shots it
would run, an executor item random bits beside what its samplex draws. The job is checked as any
other (``execution.check``), so a dry run also validates it.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
from qiskit.primitives import BitArray, DataBin, PrimitiveResult, PubResult, SamplerPubResult
from qiskit_ibm_runtime.fake_provider.executor.broadcast_sample import broadcast_sample
from qiskit_ibm_runtime.results import QuantumProgramItemResult
from samplomatic.quantum_program import SamplexItem

from . import executor_program
from .execution import DEFAULT_SHOTS, decode_params, encode_result, with_execution_spans

if TYPE_CHECKING:
    from qiskit.primitives.containers.estimator_pub import EstimatorPub
    from qiskit.primitives.containers.sampler_pub import SamplerPub
    from qiskit_ibm_runtime.quantum_program import QuantumProgram

    from .catalog import Device
    from .estimator_options import EstimatorSettings


def execute(program_id: str, params_json: str, device: Device, seed: int | None) -> str:
    """The body of a dry-run job's ``GET /jobs/{id}/results``."""
    rng = np.random.default_rng(seed)
    if program_id == "executor":
        return executor_program.execute(params_json, device, seed, run_item=_random_item)
    job = decode_params(program_id, params_json)
    if job.estimator is not None:
        results = [_random_estimate(pub, job.estimator, rng) for pub in job.pubs]  # type: ignore[arg-type]
        return encode_result(PrimitiveResult(results, metadata=job.estimator.result_metadata()))
    shots = job.options.get("default_shots") or DEFAULT_SHOTS
    started = datetime.now(timezone.utc)
    samples = [_random_sample(pub, shots, rng) for pub in job.pubs]  # type: ignore[arg-type]
    return encode_result(with_execution_spans(PrimitiveResult(samples), started, datetime.now(timezone.utc)))


def _random_bits(shape: tuple[int, ...], shots: int, width: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2, size=(*shape, shots, width), dtype=np.uint8).astype(bool)


def _random_sample(pub: SamplerPub, default_shots: int, rng: np.random.Generator) -> SamplerPubResult:
    shots = pub.shots or default_shots
    registers = {
        creg.name: BitArray.from_bool_array(_random_bits(pub.shape, shots, creg.size, rng), order="little")
        for creg in pub.circuit.cregs
    }
    metadata = {"shots": shots, "circuit_metadata": dict(pub.circuit.metadata or {})}
    return SamplerPubResult(DataBin(**registers, shape=pub.shape), metadata=metadata)


def _random_estimate(pub: EstimatorPub, settings: EstimatorSettings, rng: np.random.Generator) -> PubResult:
    plan = settings.plan(pub.precision)
    evs = rng.uniform(-1.0, 1.0, size=pub.shape)
    stds = rng.uniform(0.0, 1.0, size=pub.shape) / math.sqrt(plan.shots)
    data = DataBin(evs=evs, stds=stds, ensemble_standard_error=stds.copy(), shape=pub.shape)
    return PubResult(data, metadata=settings.pub_metadata(plan, dict(pub.circuit.metadata or {})))


def _random_item(
    program: QuantumProgram, index: int, device: Device, seed: int | None
) -> QuantumProgramItemResult:
    """Random bits for each register, beside the samplex's own draws (which are cheap and random)."""
    item = program.items[index]
    rng = np.random.default_rng(None if seed is None else seed + index)
    data: dict[str, Any] = {}
    if isinstance(item, SamplexItem):
        data = broadcast_sample(item.samplex, item.samplex_arguments, item.shape, rng)
        data.pop("parameter_values", None)
    for creg in item.circuit.cregs:
        data[creg.name] = _random_bits(item.shape, program.shots, creg.size, rng)
    return QuantumProgramItemResult(result=data)
