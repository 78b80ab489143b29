"""Cleanup as a deployable flow file: deletes stored results (and, opted in, IBM jobs) of old jobs.

Run it once with ``prefect-qiskit-jobs cleanup --results``; deploy it on a schedule with
``deployments/prefect.yaml`` (weekly, results older than 30 days, IBM's jobs left alone).
"""

from prefect_qiskit_jobs import clean_up_jobs

__all__ = ["clean_up_jobs"]
