"""The machine and the versions a run measured on, recorded beside its figures."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "prefect-qiskit-jobs",
    "prefect",
    "qiskit",
    "qiskit-ibm-runtime",
    "qiskit-aer",
    "requests",
    "urllib3",
    "fastapi",
    "uvicorn",
    "pydantic",
    "psutil",
)


def _first_field(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    """CPUs (those this process may use: call before pinning), model, memory, OS and Python."""
    memory_kib = _first_field("/proc/meminfo", "MemTotal")
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpus": len(affinity(0)) if affinity else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _first_field("/proc/cpuinfo", "model name") or platform.processor(),
        "memory_gib": round(int(memory_kib.split()[0]) / 1024 / 1024, 1) if memory_kib else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
