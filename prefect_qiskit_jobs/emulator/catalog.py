"""The devices the emulator serves, built from the fake backends that qiskit-ibm-runtime ships.

Their ``conf_*.json`` and ``props_*.json`` files are already in IBM's server format, so the
configuration and properties routes serve them as they are, renamed to the name the device is
served under; the matching ``FakeBackendV2`` class gives the transpiler target used to check
circuits and the noise that Aer applies on the qubits a circuit touches (``subdevice``). A fake
served under several names is loaded once, and so is each of its sub-device simulators.

As IBM does, each device has a mock twin (``ibm_brisbane``: ``mock_brisbane``, the name the client
derives for ``run(dry_run=True)``) with the device's configuration, properties and calibrations,
listed only to a client that asks for mocks; jobs on it are dry runs (``dry_run``).
"""

from __future__ import annotations

import importlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .config import BackendSpec, fake_backends_root
from .subdevice import Parts, sub_device_simulator

if TYPE_CHECKING:
    from qiskit.providers import BackendV2
    from qiskit.transpiler import Target

_FAKE_BACKENDS_PACKAGE = "qiskit_ibm_runtime.fake_provider.backends"
# Sub-device simulators kept per fake: a workload reuses its qubit sets (an executor item on a
# 156-qubit device uses some fifty); a few kB to a few MB each.
_SIMULATORS_KEPT = 256


class Fake:
    """One fake backend folder: its wire documents and, lazily, its target and noisy simulator."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._base = fake_backends_root() / folder
        self._lock = threading.Lock()
        self._simulators: dict[tuple[tuple[int, ...], Parts | None], BackendV2] = {}

    @cached_property
    def configuration(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self._base / f"conf_{self.folder}.json").read_text())
        return document

    @cached_property
    def properties(self) -> dict[str, Any]:
        """Read on first use: a utility-scale device's properties are half a megabyte."""
        document: dict[str, Any] = json.loads((self._base / f"props_{self.folder}.json").read_text())
        return document

    @cached_property
    def fake_class(self) -> type[BackendV2]:
        module = importlib.import_module(f"{_FAKE_BACKENDS_PACKAGE}.{self.folder}")
        (cls_name,) = (n for n in dir(module) if n.startswith("Fake"))
        cls: type[BackendV2] = getattr(module, cls_name)
        return cls

    @cached_property
    def fake_backend(self) -> BackendV2:
        return self.fake_class()

    @property
    def physical_qubits(self) -> int:
        """Programmable qubits, reset qubits and couplers, as IBM counts them; the fake says so for
        Heron and Nighthawk devices, and for the others only the programmable qubits are known."""
        known = getattr(self.fake_class, "_physical_qubits", None)
        return int(known) if known else int(self.configuration["n_qubits"])

    def simulator(self, touched: tuple[int, ...], parts: Parts | None = None) -> BackendV2:
        """A noisy simulator of the qubits ``touched``, renumbered 0..n-1; built once per qubit set.

        Given the independent ``parts`` of ``touched``, without couplings between them (``subdevice``).
        """
        key = (touched, parts)
        with self._lock:
            simulator = self._simulators.pop(key, None)
            if simulator is None:
                simulator = sub_device_simulator(self.fake_backend.target, touched, parts)
            self._simulators[key] = simulator  # the most recently used last
            while len(self._simulators) > _SIMULATORS_KEPT:
                del self._simulators[next(iter(self._simulators))]
            return simulator


@dataclass(frozen=True)
class Calibration:
    """One calibration of a device: the id a client may ask for and when it was taken."""

    id: str
    taken: datetime


def new_calibration() -> Calibration:
    return Calibration(id=secrets.token_hex(12), taken=datetime.now(timezone.utc))


@dataclass
class Device:
    """One served backend: a fake under the name the emulator serves it as, and its calibrations."""

    name: str
    fake: Fake
    calibrations: list[Calibration] = field(default_factory=lambda: [new_calibration()])
    mock: bool = False

    @property
    def folder(self) -> str:
        return self.fake.folder

    @property
    def num_qubits(self) -> int:
        return int(self.fake.configuration["n_qubits"])

    @property
    def target(self) -> Target:
        return self.fake.fake_backend.target

    def simulator(self, touched: tuple[int, ...], parts: Parts | None = None) -> BackendV2:
        return self.fake.simulator(touched, parts)

    @property
    def calibration(self) -> Calibration:
        """The current calibration: the one taken at emulator start, or the latest recalibration."""
        return self.calibrations[-1]

    def recalibrate(self) -> Calibration:
        self.calibrations.append(new_calibration())
        return self.calibration

    def find_calibration(self, calibration_id: str | None) -> Calibration | None:
        """The calibration ``calibration_id`` names (the current one for None); None if unknown."""
        if calibration_id is None:
            return self.calibration
        return next((c for c in self.calibrations if c.id == calibration_id), None)

    def calibration_before(self, moment: datetime, among: Calibration | None = None) -> Calibration | None:
        """The latest calibration taken strictly before ``moment`` (only ``among``, if given).

        IBM answers ``updated_before`` with the properties "closest to, but older than" that time.
        """
        candidates = [among] if among is not None else self.calibrations
        earlier = [c for c in candidates if c.taken < moment]
        return max(earlier, key=lambda c: c.taken, default=None)

    @property
    def configuration(self) -> dict[str, Any]:
        return {**self.fake.configuration, "backend_name": self.name}

    def properties(self, calibration: Calibration) -> dict[str, Any]:
        """Properties as of ``calibration``: its date, unchanged between reads."""
        return {
            **self.fake.properties,
            "backend_name": self.name,
            "last_update_date": calibration.taken.isoformat(),
        }

    def list_entry(self, queue_length: int) -> dict[str, Any]:
        """The entry of ``GET /backends``, with every field the client reads from it."""
        configuration = self.fake.configuration
        entry = {"class": "mock"} if self.mock else {}
        return {
            **entry,
            "name": self.name,
            "status": {"name": "online", "reason": "available"},
            "is_simulator": bool(configuration.get("simulator", False)),
            "qubits": self.num_qubits,
            "physical_qubits": self.fake.physical_qubits,
            "queue_length": queue_length,
            "processor_type": configuration.get("processor_type") or {},
            "clops": {"type": "hardware", "value": configuration.get("clops_h") or 0},
            "performance_metrics": {"quantum_volume": configuration.get("quantum_volume")},
        }

    def status(self, queue_length: int) -> dict[str, Any]:
        """The body of ``GET /backends/{name}/status``."""
        return {
            "state": True,
            "status": "active",
            "message": "available",
            "length_queue": queue_length,
            "backend_version": self.fake.configuration.get("backend_version", "1.0.0"),
        }


def mock_name(name: str) -> str:
    """The mock twin's name, as the client derives it for a dry run."""
    return re.sub(r"^[^_]+", "mock", name)


class Catalog:
    """The served devices by name; each fake folder is loaded once, whatever names it serves."""

    def __init__(self, backends: tuple[str, ...]) -> None:
        """``backends`` as ``EmulatorConfig.backends`` gives them: ``FAKE`` or ``NAME=FAKE``."""
        fakes: dict[str, Fake] = {}
        self.devices: dict[str, Device] = {}
        for spec in map(BackendSpec.parse, backends):
            fake = fakes.setdefault(spec.folder, Fake(spec.folder))
            name = spec.name or str(fake.configuration["backend_name"])
            if name in self.devices:
                raise ValueError(f"two backends are served as {name!r}")
            self.devices[name] = Device(name=name, fake=fake)
        for device in list(self.devices.values()):
            twin = mock_name(device.name)
            if twin not in self.devices:  # two names with one twin name: the first device has it
                self.devices[twin] = Device(twin, device.fake, device.calibrations, mock=True)

    def listed(self, include_mocks: bool) -> list[Device]:
        """The devices ``GET /backends`` lists: mock twins only when asked for."""
        return [device for device in self.devices.values() if include_mocks or not device.mock]

    def get(self, name: str) -> Device | None:
        return self.devices.get(name)

    def __iter__(self) -> Any:
        """The devices served, without their mock twins (``devices`` holds both)."""
        return iter(self.listed(False))
