"""Program ``executor``: a quantum program in, a quantum-program result out, both in the client's schema.

The executor-based Sampler and Estimator of qiskit-ibm-runtime (``executor_sampler``,
``executor_estimator``) turn pubs into a quantum program and post-process its raw result on the
client. Params are validated with ``ibm_quantum_schemas``' ``ParamsModel`` and decoded with the
client's own converter; each item's samplex is sampled as the client's local runner samples it,
and its circuit runs in the independent parts of its touched qubits, a few per sub-device
(``subdevice``), since Aer cannot hold a utility-scale device and the client's Estimator reads
every qubit of it; the result is built from ``ibm_quantum_schemas``' result models, the ones the
client's ``ExecutorResultDecoder`` reads. Everything here is blocking.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
from ibm_quantum_schemas.common import CompressedTensorModel
from ibm_quantum_schemas.executor.version_2_0 import (
    ChunkPart,
    ChunkSpan,
    ItemMetadataModel,
    MetadataModel,
    QuantumProgramResultItemModel,
    QuantumProgramResultModel,
)
from pydantic import ValidationError
from qiskit.primitives.containers.bindings_array import BindingsArray
from qiskit.primitives.containers.sampler_pub import SamplerPub
from qiskit_aer.primitives import SamplerV2 as AerSamplerV2
from qiskit_ibm_runtime.fake_provider.executor.broadcast_sample import broadcast_sample
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from qiskit_ibm_runtime.quantum_program.converters.converters_2_0 import passthrough_data_to_2_0
from qiskit_ibm_runtime.quantum_program.params_converters import QUANTUM_PROGRAM_PARAMS_CONVERTERS
from qiskit_ibm_runtime.results import QuantumProgramItemResult
from samplomatic.quantum_program import CircuitItem, SamplexItem

from .execution import _DECODE_LOCK, MAX_SHOTS, InvalidJob, check_circuit
from .subdevice import independent_parts, qubits_of, split_circuit, sub_devices

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    from .catalog import Device

PROGRAM_ID = "executor"
# The params schema the installed client sends (``Executor._SCHEMA_VERSION``); its results answer in kind.
SCHEMA_VERSIONS = ("v2.0",)
# The widest set of independent parts Aer simulates together (a wider part runs alone): noisy shots
# cost 2**n each, each set a fixed cost and its own noise model. On a 127-qubit Estimator program
# with ZNE, 2 and 3 measured best; 4 took twice as long, 8 six times.
SUB_DEVICE_QUBITS = 3
# A few qubits run faster on one thread than OpenMP's threads cost, and jobs already run side by side.
_ONE_THREAD = {"run_options": {"max_parallel_threads": 1}}


def decode(params_json: str) -> QuantumProgram:
    """The quantum program of a job's ``params``; raises ``InvalidJob`` when it is not one."""
    try:
        params = json.loads(params_json)
    except ValueError as exc:
        raise InvalidJob(f"The job parameters are not JSON: {exc}") from None
    version = params.get("schema_version") if isinstance(params, dict) else None
    if version not in SCHEMA_VERSIONS:
        raise InvalidJob(
            f"Executor schema version {version!r} is not supported; use one of {', '.join(SCHEMA_VERSIONS)}."
        )
    converter = QUANTUM_PROGRAM_PARAMS_CONVERTERS[version]
    try:
        model = converter.model.model_validate(params)
    except ValidationError as exc:
        raise InvalidJob(f"The executor parameters do not match schema {version}: {exc}") from None
    try:
        with _DECODE_LOCK:
            program, _options = converter.decoder(model)
            for item in program.items:
                if isinstance(item, SamplexItem):
                    item.samplex.finalize()  # a decoded samplex is built but not yet ready to sample
    except Exception as exc:
        raise InvalidJob(f"The quantum program could not be decoded: {exc}") from None
    return program


def validate(program: QuantumProgram, device: Device) -> None:
    """Reject what the device cannot run: no items, too wide, not ISA, absurd shots, unclassified data."""
    if not program.items:
        raise InvalidJob("The quantum program has no items.")
    if not 0 < program.shots <= MAX_SHOTS:
        raise InvalidJob(f"shots must be between 1 and {MAX_SHOTS}, not {program.shots}.")
    if program.meas_level != "classified":
        raise InvalidJob(f"meas_level {program.meas_level!r} is not supported here; use 'classified'.")
    for index, item in enumerate(program.items):
        check_circuit(f"Item {index}", item.circuit, device)


def check(params_json: str, device: Device) -> None:
    """What ``POST /jobs`` checks before creating an executor job."""
    validate(decode(params_json), device)


ItemRunner = Callable[["QuantumProgram", int, "Device", "int | None"], "QuantumProgramItemResult"]


def execute(params_json: str, device: Device, seed: int | None, run_item: ItemRunner | None = None) -> str:
    """Run the job's quantum program on the device's noisy simulator; the body of its results.

    ``run_item`` replaces the simulation of each item (a dry run's random data).
    """
    program = decode(params_json)
    started = datetime.now(timezone.utc)
    run_item = run_item or _run_item
    result = [run_item(program, index, device, seed) for index in range(len(program.items))]
    stopped = datetime.now(timezone.utc)
    # Aer runs every item at once: one chunk holds all of every item's elements.
    parts = [
        ChunkPart(
            idx_item=index,
            size=math.prod(item.shape),
            permutation=list(range(len(item.shape))),
            element_range=(0, math.prod(item.shape), 1),
        )
        for index, item in enumerate(program.items)
    ]
    model = QuantumProgramResultModel(
        data=[
            QuantumProgramResultItemModel(
                results={name: _tensor(value) for name, value in item.items()},
                metadata=ItemMetadataModel(),
            )
            for item in result
        ],
        metadata=MetadataModel(chunk_timing=[ChunkSpan(start=started, stop=stopped, parts=parts)]),
        passthrough_data=passthrough_data_to_2_0(program.passthrough_data),
        semantic_role=program._semantic_role,
    )
    body: str = model.model_dump_json()
    return body


def _run_item(
    program: QuantumProgram, index: int, device: Device, seed: int | None
) -> QuantumProgramItemResult:
    """Item ``index``: its samplex sampled, its circuit run in independent parts on their sub-devices.

    Twirling, ZNE's gate folding, PEC's noise injection and the basis changes are already in the
    circuit and its samplex (the client builds them), so they run as IBM runs them. The client's
    Estimator twirls and reads every qubit of its observables' width, so the circuit is split into
    the parts no operation links (``subdevice``), packed into sub-devices Aer can hold; each runs
    the item's every binding and shot with its own seed, and its bits fill its own clbits.
    """
    item = program.items[index]
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    values = item.circuit_arguments if isinstance(item, CircuitItem) else None
    if isinstance(item, SamplexItem):
        data = broadcast_sample(item.samplex, item.samplex_arguments, item.shape, rng)
        values = data.pop("parameter_values")
    column = {parameter: position for position, parameter in enumerate(item.circuit.parameters)}
    bits: dict[str, np.ndarray] = {}
    groups = sub_devices(independent_parts(item.circuit), SUB_DEVICE_QUBITS)
    qubit_sets = [qubits_of(parts) for parts in groups]
    for qubits, parts, part in zip(qubit_sets, groups, split_circuit(item.circuit, qubit_sets), strict=True):
        part_seed = None if seed is None else int(rng.integers(2**31))
        simulator = device.simulator(qubits, parts)
        sampler = AerSamplerV2.from_backend(simulator, seed=part_seed, options=_ONE_THREAD)
        for name, part_bits in _sample(sampler, part, values, column, item.shape, program.shots).items():
            bits[name] = part_bits if name not in bits else bits[name] | part_bits
    return QuantumProgramItemResult(result={**data, **bits})


def _sample(
    sampler: AerSamplerV2,
    circuit: QuantumCircuit,
    values: np.ndarray | None,
    column: dict[Parameter, int],
    shape: tuple[int, ...],
    shots: int,
) -> dict[str, np.ndarray]:
    """``shots`` of ``circuit`` per element of ``shape``: each register's bits, its bit 0 first.

    ``values`` holds every parameter of the item's circuit (``column`` says where); a part without
    parameters runs all the shots of every element at once, as they are alike.
    """
    size = math.prod(shape)
    if circuit.num_parameters:
        assert values is not None
        parameters = tuple(circuit.parameters)
        bindings = BindingsArray({parameters: values[..., [column[p] for p in parameters]]})
        (result,) = sampler.run([SamplerPub(circuit, bindings, shots)]).result()
    else:
        (result,) = sampler.run([SamplerPub(circuit, None, shots * size)]).result()
    return {
        name: np.asarray(array.to_bool_array(order="little")).reshape(*shape, shots, -1)
        for name, array in result.data.items()
    }


def _tensor(value: Any) -> CompressedTensorModel:
    return CompressedTensorModel.from_numpy(np.asarray(value))
