"""Benchmarks of prefect-qiskit-jobs; run them as modules, e.g. ``python -m benchmarks.polling``."""
