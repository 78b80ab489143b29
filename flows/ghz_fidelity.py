"""A scheduled experiment: the GHZ-state population fidelity of a device, tracked run after run.

Each run prepares an n-qubit GHZ state, measures it, and computes the population fidelity
P(0…0) + P(1…1) (1 for an ideal device; readout and gate errors pull it down). It then reads the
trend that earlier runs left in Prefect result storage, appends its own figure, writes the trend
back, and shows it as an artifact, so a person (or the next run) sees drift at a glance.

Deploy it on a cron schedule (``deployments/prefect.yaml``), or run ``python -m flows.ghz_fidelity``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.results import ResultStore, get_default_result_storage
from prefect.serializers import JSONSerializer
from qiskit.transpiler import generate_preset_pass_manager

from flows.common import ghz, ibm_or_emulator
from prefect_qiskit_jobs import (
    afetch_job_result,
    aget_backend,
    asubmit_sampler_job,
    await_for_job,
    cancel_jobs_on_exit,
)

SPARK = "▁▂▃▄▅▆▇█"


def trend_key(backend: str, num_qubits: int) -> str:
    return f"qiskit-trend-ghz{num_qubits}-{backend}".replace("_", "-")


def _store() -> ResultStore:
    return ResultStore(result_storage=get_default_result_storage(), serializer=JSONSerializer())


def population_fidelity(counts: dict[str, int], num_qubits: int) -> float:
    shots = sum(counts.values()) or 1
    return (counts.get("0" * num_qubits, 0) + counts.get("1" * num_qubits, 0)) / shots


def sparkline(values: list[float]) -> str:
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[round((v - low) / span * (len(SPARK) - 1))] for v in values)


@task(name="record-trend")
def record_trend(key: str, point: dict[str, Any]) -> list[dict[str, Any]]:
    """Append ``point`` to the trend stored under ``key`` and show the whole trend as an artifact."""
    store = _store()
    trend: list[dict[str, Any]] = store.read(key).result if store.exists(key) else []
    trend.append(point)
    store.write(trend, key=key)
    values = [p["fidelity"] for p in trend]
    rows = "\n".join(f"| {p['time']} | `{p['job_id']}` | {p['fidelity']:.4f} |" for p in trend[-30:])
    create_markdown_artifact(
        f"### GHZ population fidelity on {point['backend']} ({point['num_qubits']} qubits)\n\n"
        f"Trend over {len(trend)} run(s): `{sparkline(values)}` "
        f"(latest {values[-1]:.4f}, best {max(values):.4f}, worst {min(values):.4f})\n\n"
        f"| run time (UTC) | job | fidelity |\n|---|---|---:|\n{rows}\n",
        key=key,
        description="GHZ population fidelity, one point per scheduled run",
    )
    return trend


@cancel_jobs_on_exit
@flow(name="qiskit-ghz-fidelity")
async def ghz_fidelity(
    backend: str = "ibmq_manila", num_qubits: int = 3, shots: int = 2000, credentials: str | None = None
) -> list[dict[str, Any]]:
    """Measure the GHZ population fidelity, append it to the stored trend, return the trend.

    Args:
        backend: IBM backend name.
        num_qubits: Size of the GHZ state.
        shots: Shots of the measurement.
        credentials: Name of a saved ``IBMQuantumCredentials`` block; None reads ``QISKIT_IBM_*``.
    """
    logger = get_run_logger()
    target = await aget_backend(backend, credentials=credentials)
    circuit = generate_preset_pass_manager(optimization_level=1, backend=target).run(ghz(num_qubits))
    job = await asubmit_sampler_job(
        [circuit],
        backend=backend,
        credentials=credentials,
        options={"default_shots": shots},
        tags=["experiment:ghz"],
    )
    await await_for_job(job, credentials=credentials)
    counts = (await afetch_job_result(job, credentials=credentials))[0].data.meas.get_counts()
    fidelity = population_fidelity(counts, num_qubits)
    logger.info("GHZ-%d population fidelity on %s: %.4f (job %s)", num_qubits, backend, fidelity, job.job_id)
    context = FlowRunContext.get()
    point = {
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "job_id": job.job_id,
        "backend": backend,
        "num_qubits": num_qubits,
        "fidelity": round(fidelity, 6),
        "flow_run_id": str(context.flow_run.id) if context and context.flow_run else None,
    }
    return record_trend(trend_key(backend, num_qubits), point)


if __name__ == "__main__":
    with ibm_or_emulator(queue_delay=1.0) as where:
        print(f"Running the GHZ fidelity experiment on {where}")
        trend = asyncio.run(ghz_fidelity())
        print(f"{len(trend)} point(s); latest fidelity {trend[-1]['fidelity']}")
