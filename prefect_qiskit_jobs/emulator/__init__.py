"""A local, protocol-faithful IBM Quantum Platform that the unmodified qiskit-ibm-runtime client drives.

Start one in the background with :func:`start_emulator`, or from the shell with
``prefect-qiskit-jobs emulator serve``; ``prefect-qiskit-jobs emulator env`` prints the variables
that point ``QiskitRuntimeService()`` at it.
"""

from .config import EmulatorConfig, FaultRule
from .server import RunningEmulator, start_emulator

__all__ = ["EmulatorConfig", "FaultRule", "RunningEmulator", "start_emulator"]
