"""CPU, memory and threads of the measured processes, and what the rest of the machine was doing.

A measured process is sampled from the outside (``ProcessSampler``), so it counts every OS thread,
those of C libraries included, and its own code is not changed by being watched. What only the
process itself knows exactly (its RSS high-water mark, its CPU between two of its own moments)
it reads with the helpers at the bottom.
"""

from __future__ import annotations

import resource
import threading
from pathlib import Path

import psutil


def cpu_seconds_of(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (all threads) so far; None if it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


class ProcessSampler:
    """Samples a process's RSS and OS thread count twice a second, from outside, while in the block."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.pid = pid
        self.max_rss_bytes = 0
        self.max_threads = 0
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-sampler", daemon=True)

    def sample(self) -> None:
        try:
            with self._process.oneshot():
                self.max_rss_bytes = max(self.max_rss_bytes, self._process.memory_info().rss)
                self.max_threads = max(self.max_threads, self._process.num_threads())
        except psutil.Error:
            pass

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def __enter__(self) -> ProcessSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


class MachineLoad:
    """CPU seconds the machine spent outside the benchmark's known processes, since construction.

    The machine may be shared: this says how much of it something else used meanwhile.
    """

    def __init__(self) -> None:
        self._busy = self._machine_busy()
        self._own = _own_cpu()

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return float(sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal")))

    def others(self, known: float) -> float:
        """Busy machine seconds minus ``known`` (measured processes, emulator) and this process's own."""
        own = _own_cpu() - self._own
        return max(0.0, self._machine_busy() - self._busy - known - own)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----- inside the measured process ------------------------------------------------------------
def status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; None where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def own_cpu_seconds() -> tuple[float, float]:
    """This process's user and system CPU seconds so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime
