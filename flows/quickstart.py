"""Quickstart: a Bell and a GHZ circuit, submitted, awaited together, results fetched and stored.

Run it with ``python3 dev.py demo`` (or ``python -m flows.quickstart``). With no IBM account in the
environment it starts the local emulator; with no Prefect server configured Prefect starts a
temporary one. Watch the log: each job goes QUEUED (with its queue position) → RUNNING → DONE.
"""

from __future__ import annotations

import argparse
import asyncio

from prefect import flow, get_run_logger
from qiskit.transpiler import generate_preset_pass_manager

from flows.common import bell, ghz, ibm_or_emulator
from prefect_qiskit_jobs import (
    afetch_job_result,
    aget_backend,
    asubmit_sampler_job,
    await_for_jobs,
)


@flow(name="qiskit-quickstart", log_prints=True)
async def quickstart(
    backend: str = "ibmq_manila", shots: int = 2000, credentials: str | None = None
) -> dict[str, dict[str, int]]:
    """Submit Bell and GHZ-3, wait for both, and return their counts by circuit name.

    Args:
        backend: IBM backend name (the emulator serves ibmq_manila, ibm_nairobi, ibm_brisbane, ibm_torino).
        shots: Shots per circuit.
        credentials: Name of a saved ``IBMQuantumCredentials`` block; None reads ``QISKIT_IBM_*``.
    """
    logger = get_run_logger()
    target = await aget_backend(backend, credentials=credentials)
    pass_manager = generate_preset_pass_manager(optimization_level=1, backend=target)
    circuits = [bell(), ghz(3)]
    jobs = [
        await asubmit_sampler_job(
            [pass_manager.run(circuit)],
            backend=backend,
            credentials=credentials,
            options={"default_shots": shots},
            tags=[f"circuit:{circuit.name}"],
        )
        for circuit in circuits
    ]
    logger.info("Submitted %s; waiting while they queue and run", ", ".join(job.job_id for job in jobs))
    await await_for_jobs(jobs, credentials=credentials)
    counts: dict[str, dict[str, int]] = {}
    for circuit, job in zip(circuits, jobs, strict=True):
        result = await afetch_job_result(job, credentials=credentials)
        counts[circuit.name] = dict(sorted(result[0].data.meas.get_counts().items(), key=lambda kv: -kv[1]))
        top = list(counts[circuit.name].items())[:4]
        print(f"{circuit.name} on {backend} (job {job.job_id}): {top}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="ibmq_manila")
    parser.add_argument("--shots", type=int, default=2000)
    args = parser.parse_args()
    with ibm_or_emulator() as where:
        print(f"Running the quickstart on {where}")
        asyncio.run(quickstart(backend=args.backend, shots=args.shots))


if __name__ == "__main__":
    main()
