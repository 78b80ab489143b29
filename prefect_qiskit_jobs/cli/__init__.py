"""The ``prefect-qiskit-jobs`` command: look at and cancel IBM jobs, run the emulator, and more.

One module per group: ``jobs`` (list, show, cancel, result), ``emulator`` (serve, env),
``runs`` (reap, resumer, automations) and ``cleanup``. The emulator's modules load only when its commands run.
"""

from __future__ import annotations

import typer

from prefect_qiskit_jobs.cli.cleanup import cleanup
from prefect_qiskit_jobs.cli.emulator import emulator_app
from prefect_qiskit_jobs.cli.jobs import jobs_app
from prefect_qiskit_jobs.cli.runs import automations_app, reap, resumer

app = typer.Typer(help="IBM Quantum jobs in Prefect flows.", no_args_is_help=True, add_completion=False)
app.add_typer(jobs_app, name="jobs")
app.add_typer(emulator_app, name="emulator")
app.add_typer(automations_app, name="automations")
app.command("reap")(reap)
app.command("resumer")(resumer)
app.command("cleanup")(cleanup)

__all__ = ["app"]
