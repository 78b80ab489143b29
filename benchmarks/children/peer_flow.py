"""One system's flow for the ``peers`` scenario, in that system's own virtual environment.

``python -m benchmarks.children.peer_flow --system NAME --config FILE [--serve]``

Each system runs the same flow: submit ``count`` Sampler jobs of one circuit (one pub each), wait
for all of them, read every result; with ``fail_first`` the first attempt then raises (a later step
failed) and the flow's one retry runs it again. The systems are the package, prefect-qiskit 0.2.1
(its ``QuantumRuntime`` block's ``async_sampler`` task), qcsc-prefect-qiskit 0.3.0 (its submit and
fetch tasks) and the raw client (``SamplerV2(...).run(...)`` then ``job.result()``), each written
as its documentation shows, configured (never patched) to talk to the emulator.

Without ``--serve`` the child sets up (imports, backend, transpiled circuits), prints READY and
then runs one case per line read on stdin (JSON), printing ``RESULT <json>`` after each. With
``--serve`` it serves the flow as deployment ``peers-<system>/bench`` (``flow.serve``).

This module imports only the standard library, Prefect, Qiskit and the system under test: the peers'
environments have no ``prefect_qiskit_jobs`` dependencies beyond those.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

READY = "BENCHMARK-CHILD-READY"
RESULT = "RESULT "
SYSTEMS = ("prefect-qiskit-jobs", "prefect-qiskit", "qcsc-prefect-qiskit", "raw client")
DEPLOYMENT_NAME = "bench"
LATER_STEP_FAILED = "a later step of the flow failed (benchmark: first attempt only)"

CONFIG: dict[str, Any] = {}
_CIRCUITS: dict[str, Any] = {}


def flow_name(system: str) -> str:
    return "peers-" + system.replace(" ", "-")


def logical(name: str) -> Any:
    """The benchmark's circuits: a 2-qubit Bell state and a 5-qubit GHZ state, measured."""
    from qiskit import QuantumCircuit

    qubits = {"bell": 2, "ghz": 5}[name]
    circuit = QuantumCircuit(qubits, name=name)
    circuit.h(0)
    for qubit in range(1, qubits):
        circuit.cx(qubit - 1, qubit)
    circuit.measure_all()
    return circuit


def isa(name: str, backend: Any = None, target: Any = None) -> Any:
    """The circuit transpiled once per process for the system's backend (or target)."""
    if name not in _CIRCUITS:
        from qiskit.transpiler import generate_preset_pass_manager

        manager = generate_preset_pass_manager(optimization_level=1, backend=backend, target=target)
        _CIRCUITS[name] = manager.run(logical(name))
    return _CIRCUITS[name]


def fail_if_first_attempt(fail_first: bool) -> None:
    from prefect.runtime import flow_run

    if fail_first and flow_run.run_count <= 1:
        raise RuntimeError(LATER_STEP_FAILED)


# ----- the four systems --------------------------------------------------------------------------
def ours() -> Any:
    from prefect import flow

    from prefect_qiskit_jobs import (
        afetch_job_results,
        asubmit_sampler_jobs,
        await_for_jobs,
        cancel_jobs_on_exit,
        get_backend,
    )

    backend_name = CONFIG["backend"]

    @cancel_jobs_on_exit
    @flow(name=flow_name("prefect-qiskit-jobs"), retries=1, retry_delay_seconds=0)
    async def run(count: int, circuit: str, shots: int, fail_first: bool = False) -> list[str]:
        # The backend is looked up in the flow (once per process): a served flow is pickled.
        pubs = [(isa(circuit, get_backend(backend_name)), None, shots)] * count
        jobs = await asubmit_sampler_jobs(pubs, backend=backend_name, max_pubs_per_job=1)
        await await_for_jobs(jobs)
        await afetch_job_results(jobs)
        fail_if_first_attempt(fail_first)
        return [job.job_id for job in jobs]

    for name in ("bell", "ghz"):
        isa(name, get_backend(backend_name))
    return run


def prefect_qiskit() -> Any:
    from prefect import flow
    from prefect_qiskit.runtime import QuantumRuntime
    from prefect_qiskit.vendors.ibm_quantum import IBMQuantumCredentials

    credentials = IBMQuantumCredentials(
        api_key=CONFIG["api_key"],
        crn=CONFIG["crn"],
        auth_url=CONFIG["iam_url"],
        runtime_url=CONFIG["runtime_url"] + "/",
    )

    # As a saved block is loaded: once, validated against the account's backends.
    quantum = QuantumRuntime(resource_name=CONFIG["backend"], credentials=credentials)

    @flow(name=flow_name("prefect-qiskit"), retries=1, retry_delay_seconds=0)
    async def run(count: int, circuit: str, shots: int, fail_first: bool = False) -> int:
        pub = (isa(circuit), None, shots)
        results = await asyncio.gather(*(quantum.async_sampler([pub]) for _ in range(count)))
        fail_if_first_attempt(fail_first)
        return len(results)

    target = quantum.get_target()
    for name in ("bell", "ghz"):
        isa(name, target=target)
    return run


def qcsc() -> Any:
    from prefect import flow
    from qcsc_prefect.integrations.qiskit import (
        QiskitRuntimeConfig,
        fetch_qiskit_job_result_task,
        submit_sampler_job_task,
    )

    # No token: the client's own discovery reads QISKIT_IBM_TOKEN, QISKIT_IBM_URL, IAM_URL, ...
    config = QiskitRuntimeConfig(backend_name=CONFIG["backend"])

    @flow(name=flow_name("qcsc-prefect-qiskit"), retries=1, retry_delay_seconds=0)
    async def run(count: int, circuit: str, shots: int, fail_first: bool = False) -> list[str]:
        pubs = [isa(circuit)]
        refs = await asyncio.gather(
            *(submit_sampler_job_task(pubs, runtime_config=config, shots=shots) for _ in range(count))
        )
        await asyncio.gather(
            *(fetch_qiskit_job_result_task(job_reference=ref, runtime_config=config) for ref in refs)
        )
        fail_if_first_attempt(fail_first)
        return [ref["job_id"] for ref in refs]

    backend = config.get_backend()
    for name in ("bell", "ghz"):
        isa(name, backend)
    return run


def raw() -> Any:
    from prefect import flow
    from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2

    @flow(name=flow_name("raw client"), retries=1, retry_delay_seconds=0)
    def run(count: int, circuit: str, shots: int, fail_first: bool = False) -> list[str]:
        backend = QiskitRuntimeService().backend(CONFIG["backend"])
        sampler = SamplerV2(mode=backend)
        jobs = [sampler.run([(isa(circuit), None, shots)]) for _ in range(count)]
        for job in jobs:
            job.result()
        fail_if_first_attempt(fail_first)
        return [job.job_id() for job in jobs]

    backend = QiskitRuntimeService().backend(CONFIG["backend"])
    for name in ("bell", "ghz"):
        isa(name, backend)
    return run


BUILDERS: dict[str, Callable[[], Any]] = {
    "prefect-qiskit-jobs": ours,
    "prefect-qiskit": prefect_qiskit,
    "qcsc-prefect-qiskit": qcsc,
    "raw client": raw,
}


# ----- running ------------------------------------------------------------------------------------
def run_case(flow: Any, case: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: case[k] for k in ("count", "circuit", "shots", "fail_first")}
    started = time.time()
    error = None
    try:
        outcome = flow(**kwargs)
        if asyncio.iscoroutine(outcome):
            asyncio.run(outcome)
    except Exception as exc:  # the figures are still worth reporting, with the error beside them
        error = f"{type(exc).__name__}: {exc}"[:300]
    return {"started": started, "ended": time.time(), "error": error}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.children.peer_flow")
    parser.add_argument("--system", choices=SYSTEMS, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args(argv)
    CONFIG.update(json.loads(Path(args.config).read_text()))
    flow = BUILDERS[args.system]()
    if args.serve:
        flow.serve(name=DEPLOYMENT_NAME, print_starting_message=False)
        return 0
    print(READY, flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        print(RESULT + json.dumps(run_case(flow, json.loads(line))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
