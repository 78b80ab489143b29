"""The reaper as a deployable flow file: cancels IBM jobs left behind by cancelled or crashed runs.

Run it once with ``prefect-qiskit-jobs reap``; deploy it on a short schedule with
``deployments/prefect.yaml``.
"""

from prefect_qiskit_jobs import reap_orphaned_jobs

__all__ = ["reap_orphaned_jobs"]
