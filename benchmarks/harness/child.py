"""Measured child processes and their READY/GO handshake.

A child sets itself up first (imports, client, IAM token, job handles), says READY on stdout and
blocks on stdin; the parent reads the emulator's counters and says GO. So set-up never counts
towards a child's requests or CPU, and the parent knows exactly when the measured span began.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

READY = "BENCHMARK-CHILD-READY"
GO = "GO"


def handshake() -> bool:
    """Child side: say READY and wait for GO; False if the parent said anything else (or left)."""
    print(READY, flush=True)
    return sys.stdin.readline().strip() == GO


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Child:
    """``python -m MODULE ARGS`` in the code directory, stderr to ``log``, stdout read for READY."""

    def __init__(self, module: str, args: list[str], *, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.ready = threading.Event()
        self.lines: list[str] = []
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self._reader = threading.Thread(target=self._read, name="child-stdout", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line == READY:
                self.ready.set()
            else:
                self.lines.append(line)

    def wait_ready(self, timeout: float = 600) -> None:
        while not self.ready.wait(0.5):
            if self.process.poll() is not None or timeout <= 0:
                raise RuntimeError(
                    f"the child {self.process.args!r} never became ready:\n{log_tail(self.log)}"
                )
            timeout -= 0.5

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{GO}\n".encode())
        self.process.stdin.flush()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> bool:
        """Wait for the child to exit; False when it was still running after ``timeout`` s."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def check_exit(self) -> None:
        if self.process.returncode != 0:
            raise RuntimeError(f"the child exited with {self.process.returncode}:\n{log_tail(self.log)}")

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *_exc: Any) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()
