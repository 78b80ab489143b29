"""The devices the emulator serves, built from the fake backends that qiskit-ibm-runtime ships.

Their ``conf_*.json`` and ``props_*.json`` files are already in IBM's server format, so the
configuration and properties routes serve them as they are; the matching ``FakeBackendV2`` class
gives the transpiler target used to check circuits and the noise that Aer applies.
"""

from __future__ import annotations

import importlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qiskit.providers import BackendV2
    from qiskit.transpiler import Target

_FAKE_BACKENDS_PACKAGE = "qiskit_ibm_runtime.fake_provider.backends"


@dataclass
class Device:
    """One served backend: its wire documents, and (lazily) its target and noisy simulator."""

    folder: str
    configuration: dict[str, Any]
    properties: dict[str, Any]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _simulator: BackendV2 | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.configuration["backend_name"])

    @property
    def num_qubits(self) -> int:
        return int(self.configuration["n_qubits"])

    @cached_property
    def fake_backend(self) -> BackendV2:
        module = importlib.import_module(f"{_FAKE_BACKENDS_PACKAGE}.{self.folder}")
        (cls_name,) = (n for n in dir(module) if n.startswith("Fake"))
        backend: BackendV2 = getattr(module, cls_name)()
        return backend

    @property
    def target(self) -> Target:
        return self.fake_backend.target

    def simulator(self) -> BackendV2:
        """An ``AerSimulator`` with this device's noise model; built once (seconds for 100+ qubits)."""
        with self._lock:
            if self._simulator is None:
                from qiskit_aer import AerSimulator

                self._simulator = AerSimulator.from_backend(self.fake_backend)
            return self._simulator

    def list_entry(self, queue_length: int) -> dict[str, Any]:
        """The entry of ``GET /backends``."""
        processor = self.configuration.get("processor_type") or {}
        return {
            "name": self.name,
            "status": {"name": "online", "reason": "available"},
            "qubits": self.num_qubits,
            "queue_length": queue_length,
            "processor_type": processor,
            "clops": {"type": "hardware", "value": self.configuration.get("clops_h") or 0},
            "performance_metrics": {"quantum_volume": self.configuration.get("quantum_volume")},
            "wait_time_seconds": None,
        }

    def status(self, queue_length: int) -> dict[str, Any]:
        """The body of ``GET /backends/{name}/status``."""
        return {
            "state": True,
            "status": "active",
            "message": "available",
            "length_queue": queue_length,
            "backend_version": self.configuration.get("backend_version", "1.0.0"),
        }

    def current_properties(self) -> dict[str, Any]:
        """Properties with a fresh ``last_update_date``, as a device calibrated today would report."""
        props = dict(self.properties)
        props["last_update_date"] = datetime.now(timezone.utc).isoformat()
        return props


class Catalog:
    """The served devices by name."""

    def __init__(self, folders: tuple[str, ...]) -> None:
        root = Path(importlib.import_module(_FAKE_BACKENDS_PACKAGE).__file__ or "").parent
        self.devices: dict[str, Device] = {}
        for folder in folders:
            base = root / folder
            if not (base / f"conf_{folder}.json").exists():
                raise ValueError(f"qiskit-ibm-runtime ships no fake backend named {folder!r}")
            device = Device(
                folder=folder,
                configuration=json.loads((base / f"conf_{folder}.json").read_text()),
                properties=json.loads((base / f"props_{folder}.json").read_text()),
            )
            self.devices[device.name] = device

    def get(self, name: str) -> Device | None:
        return self.devices.get(name)

    def __iter__(self) -> Any:
        return iter(self.devices.values())
