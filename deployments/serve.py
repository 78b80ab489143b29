"""Serve every example deployment locally, against the emulator unless an IBM account is configured.

    python -m deployments.serve

Starts the local IBM Quantum Platform emulator (when ``QISKIT_IBM_TOKEN``/``QISKIT_IBM_INSTANCE``
are not set), then serves the quickstart, the parameter sweep, the nightly GHZ fidelity experiment
(cron), the reaper (every five minutes) and the weekly cleanup of old stored results from this
process, as ``flow.serve`` does. Point
``PREFECT_API_URL`` at a server to see them in its UI; trigger runs from the UI or with
``prefect deployment run 'qiskit-quickstart/quickstart'``.
"""

from __future__ import annotations

from prefect import serve
from prefect.schedules import Cron, Interval

from flows.cleanup import clean_up_jobs
from flows.common import ibm_or_emulator
from flows.ghz_fidelity import ghz_fidelity
from flows.parameter_sweep import parameter_sweep
from flows.quickstart import quickstart
from flows.reaper import reap_orphaned_jobs


def main() -> None:
    with ibm_or_emulator() as where:
        print(f"Serving the example deployments; jobs go to {where}")
        serve(
            quickstart.to_deployment(name="quickstart", tags=["qiskit", "example"]),
            parameter_sweep.to_deployment(name="parameter-sweep", tags=["qiskit", "example"]),
            ghz_fidelity.to_deployment(
                name="nightly", tags=["qiskit", "experiment"], schedule=Cron("0 2 * * *", timezone="UTC")
            ),
            reap_orphaned_jobs.to_deployment(
                name="reaper", tags=["qiskit", "maintenance"], schedule=Interval(300)
            ),
            clean_up_jobs.to_deployment(
                name="cleanup",
                tags=["qiskit", "maintenance"],
                parameters={"older_than": "30d", "results": True, "ibm": False},
                schedule=Cron("0 3 * * 0", timezone="UTC"),
            ),
        )


if __name__ == "__main__":
    main()
