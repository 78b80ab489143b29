"""The unmodified ``qiskit-ibm-runtime`` client, for what a scenario sets up or compares against.

Submitting, building job handles and cancelling go through the client rather than through the
package, so that a change to the package's internals never changes how a scenario is set up.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.harness.emulator import BACKEND

PACKAGE_TAG = "prefect-qiskit-jobs"
FLOW_RUN_PREFIX = "prefect-flow-run:"
SUBMIT_KEY_PREFIX = "prefect-submit:"


def service() -> Any:
    """A ``QiskitRuntimeService`` built from the ``QISKIT_IBM_*`` environment (the emulator's)."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    return QiskitRuntimeService()


def bell_for(backend: Any) -> Any:
    """A 2-qubit Bell circuit transpiled once for ``backend`` (ISA), as a flow would send it."""
    from qiskit import QuantumCircuit
    from qiskit.transpiler import generate_preset_pass_manager

    circuit = QuantumCircuit(2, name="bell")
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return generate_preset_pass_manager(optimization_level=1, backend=backend).run(circuit)


def flow_run_tags(flow_run_id: uuid.UUID) -> list[str]:
    """The tags the package's submit task gives a job of flow run ``flow_run_id`` (one key per job)."""
    return [PACKAGE_TAG, f"{SUBMIT_KEY_PREFIX}{uuid.uuid4().hex}", f"{FLOW_RUN_PREFIX}{flow_run_id}"]


def ref(job_id: str, tags: list[str], instance: str | None, backend: str = BACKEND) -> dict[str, Any]:
    """A job reference in the JSON shape of the package's ``JobRef``."""
    return {"job_id": job_id, "backend": backend, "primitive": "sampler", "instance": instance, "tags": tags}


def submit_sampler_jobs(count: int, shots: int, threads: int) -> list[dict[str, Any]]:
    """``count`` Bell Sampler jobs tagged as one flow run's; returns their references in order."""
    from qiskit_ibm_runtime import SamplerV2

    client = service()
    backend = client.backend(BACKEND)
    circuit = bell_for(backend)
    flow_run_id = uuid.uuid4()
    instance = client.active_account().get("instance")

    def submit(_index: int) -> dict[str, Any]:
        tags = flow_run_tags(flow_run_id)
        sampler = SamplerV2(mode=backend, options={"environment": {"job_tags": tags}})
        return ref(sampler.run([(circuit, None, shots)]).job_id(), tags, instance)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(submit, range(count)))


def job_handles(client: Any, refs: list[dict[str, Any]]) -> list[Any]:
    """``RuntimeJobV2`` objects as ``SamplerV2.run`` returns them: one shared backend and REST client.

    Built without a request per job (``service.job(id)`` would read each one first).
    """
    from qiskit_ibm_runtime import RuntimeJobV2

    backend = client.backend(refs[0]["backend"])
    return [
        RuntimeJobV2(
            backend=backend,
            api_client=client._active_api_client,  # what QiskitRuntimeService._run hands its jobs
            job_id=job["job_id"],
            program_id=job["primitive"],
            service=client,
            tags=list(job["tags"]),
        )
        for job in refs
    ]


def cancel_all(refs: list[dict[str, Any]], threads: int) -> int:
    """Cancel every job through the client, ``threads`` at a time; returns how many cancels failed."""
    handles = job_handles(service(), refs)

    def cancel(job: Any) -> bool:
        try:
            job.cancel()
        except Exception:  # already final (409) or a transient error: count it, go on
            return False
        return True

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(not done for done in pool.map(cancel, handles))
