"""Which CPUs the emulator gets and which the measured processes get.

The emulator executes jobs with Aer (about 0.25 CPU s each); on the same CPUs that work would be
counted against whatever is waiting for the jobs. So the emulator runs on one half of the CPUs,
and this process with every process it starts afterwards on the other.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


def _available() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin(cpus: tuple[int, ...] | None) -> None:
    """Run this thread, and the threads and processes it starts from now on, on ``cpus``."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


@dataclass(frozen=True)
class CpuPlan:
    """The two halves; both None when not pinning (one CPU, or ``--no-pin``)."""

    waiters: tuple[int, ...] | None
    emulator: tuple[int, ...] | None

    @classmethod
    def split(cls, enabled: bool) -> CpuPlan:
        available = _available()
        if not enabled or len(available) < 2:
            return cls(None, None)
        half = len(available) // 2
        return cls(tuple(available[:half]), tuple(available[half:]))

    @contextlib.contextmanager
    def emulator_side(self) -> Iterator[None]:
        """Start the emulator inside this block: it inherits the emulator's CPUs."""
        pin(self.emulator)
        try:
            yield
        finally:
            pin(self.waiters)

    def describe(self) -> str:
        if self.waiters is None or self.emulator is None:
            return "not pinned: the emulator's job execution competes with the measured processes"
        return (
            f"the measured processes (and this script) on CPU {_listed(self.waiters)}, "
            f"the emulator on CPU {_listed(self.emulator)}"
        )

    def as_json(self) -> dict[str, list[int] | None]:
        return {
            "waiters": list(self.waiters) if self.waiters else None,
            "emulator": list(self.emulator) if self.emulator else None,
        }


def _listed(cpus: tuple[int, ...]) -> str:
    return ",".join(str(cpu) for cpu in cpus)
