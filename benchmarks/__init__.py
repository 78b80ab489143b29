"""Benchmarks of prefect-qiskit-jobs against the local emulator: ``python -m benchmarks [--quick]``.

``harness`` starts and measures processes, ``scenarios`` holds one module per question asked,
``children`` the code that runs in the measured processes, and ``report`` writes the figures
beside their goals. See ``benchmarks/README.md``.
"""
