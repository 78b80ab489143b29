"""Parameter sweep: an Estimator sweep split into many jobs, awaited together, analysed downstream.

The circuit prepares cos(θ/2)|00⟩ + sin(θ/2)|11⟩, for which ⟨XX⟩ = sin θ and ⟨IZ⟩ = cos θ (Z on qubit 0). The
sweep's points are spread over several jobs (as a large sweep would be), waited on together by one
batched sensor, fetched into result storage, and a downstream task reads the stored results back
(no request to IBM) and fits the visibility: the amplitude that noise shrinks below 1.

Run it with ``python -m flows.parameter_sweep``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from flows.common import ibm_or_emulator
from prefect_qiskit_jobs import (
    JobRef,
    afetch_job_results,
    aget_backend,
    asubmit_estimator_jobs,
    await_for_jobs,
    cancel_jobs_on_exit,
    read_job_result,
)


class SweepParameters(BaseModel):
    """What the sweep covers; the Prefect UI shows these as a form."""

    backend: str = Field("ibmq_manila", description="IBM backend name")
    points: int = Field(12, ge=2, le=200, description="θ values between 0 and 2π")
    jobs: int = Field(3, ge=1, le=50, description="jobs the sweep is split into")
    precision: float = Field(0.03, gt=0, le=0.5, description="target standard error of each value")


class SweepPoint(BaseModel):
    theta: float
    observable: str
    value: float
    std: float


def sweep_circuit() -> tuple[QuantumCircuit, Parameter]:
    theta = Parameter("θ")
    circuit = QuantumCircuit(2)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    return circuit, theta


@task(name="analyse-sweep")
def analyse_sweep(jobs: list[JobRef], chunks: list[list[float]]) -> dict[str, Any]:
    """Read the stored results (no request to IBM) and fit ⟨XX⟩ ≈ A sin θ, ⟨IZ⟩ ≈ B cos θ."""
    points: list[SweepPoint] = []
    for job, thetas in zip(jobs, chunks, strict=True):
        pub = read_job_result(job)[0]
        for row, name in enumerate(("XX", "IZ")):
            for column, theta in enumerate(thetas):
                points.append(
                    SweepPoint(
                        theta=theta,
                        observable=name,
                        value=float(pub.data.evs[row][column]),
                        std=float(pub.data.stds[row][column]),
                    )
                )
    fits = {}
    for name, model in (("XX", np.sin), ("IZ", np.cos)):
        selected = [p for p in points if p.observable == name]
        basis = model(np.array([p.theta for p in selected]))
        values = np.array([p.value for p in selected])
        fits[name] = float(basis @ values / (basis @ basis))
    create_table_artifact(
        [{"observable": n, "fitted amplitude": round(a, 4), "ideal": 1.0} for n, a in fits.items()],
        key="qiskit-sweep-visibility",
        description="Visibility of the θ sweep: fitted amplitude of ⟨XX⟩ = A sin θ and ⟨IZ⟩ = B cos θ",
    )
    return {"visibility": fits, "points": [p.model_dump() for p in points]}


@cancel_jobs_on_exit
@flow(name="qiskit-parameter-sweep")
async def parameter_sweep(
    sweep: SweepParameters = SweepParameters(),  # noqa: B008 - pydantic defaults are immutable here
    credentials: str | None = None,
) -> dict[str, Any]:
    """Sweep θ over [0, 2π] on ``sweep.backend`` as ``sweep.jobs`` Estimator jobs; return the fits.

    Args:
        sweep: Backend, number of points and jobs, target precision.
        credentials: Name of a saved ``IBMQuantumCredentials`` block; None reads ``QISKIT_IBM_*``.
    """
    logger = get_run_logger()
    backend = await aget_backend(sweep.backend, credentials=credentials)
    circuit, _theta = sweep_circuit()
    isa = generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)
    observables = [SparsePauliOp(label).apply_layout(isa.layout) for label in ("XX", "IZ")]
    thetas = np.linspace(0, 2 * math.pi, sweep.points)
    chunks = [chunk.tolist() for chunk in np.array_split(thetas, sweep.jobs) if len(chunk)]
    pubs = [(isa, [[o] for o in observables], np.array(chunk).reshape(-1, 1)) for chunk in chunks]
    jobs = await asubmit_estimator_jobs(
        pubs,
        backend=sweep.backend,
        max_pubs_per_job=1,
        credentials=credentials,
        options={"default_precision": sweep.precision},
        tags=["sweep:ry-cx"],
    )
    logger.info("Submitted %d sweep jobs; waiting for them together", len(jobs))
    await await_for_jobs(jobs, credentials=credentials)
    await afetch_job_results(jobs, credentials=credentials)
    summary = analyse_sweep(jobs, chunks)
    logger.info("Visibility: %s", summary["visibility"])
    return summary


if __name__ == "__main__":
    with ibm_or_emulator(queue_delay=1.0) as where:
        print(f"Running the parameter sweep on {where}")
        print(asyncio.run(parameter_sweep())["visibility"])
