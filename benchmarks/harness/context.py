"""What a scenario is handed: the code under test, the CPU plan, a scratch directory, quick or full."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness.code import CodeUnderTest
from benchmarks.harness.cpus import CpuPlan


@dataclass(frozen=True)
class Bench:
    code: CodeUnderTest
    cpus: CpuPlan
    workdir: Path
    quick: bool

    def scratch(self, name: str) -> Path:
        """A directory of its own under the run's scratch directory (logs, job lists, results)."""
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def environment(self, *overlays: Mapping[str, str]) -> dict[str, str]:
        """The environment of a process the scenario starts: the code under test first on PYTHONPATH."""
        return self.code.environment(*overlays)
