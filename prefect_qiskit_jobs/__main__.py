"""``python -m prefect_qiskit_jobs`` is the ``prefect-qiskit-jobs`` command."""

from prefect_qiskit_jobs.cli import app

app()
