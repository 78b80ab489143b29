"""``python -m prefect_qiskit_jobs.cli``: the command, as its entry point runs it."""

from prefect_qiskit_jobs.cli import app

app()
