"""A background emulator does not outlive the process that started it.

Its parent may be killed without a chance to stop it (SIGKILL, an out-of-memory kill, a test
worker past its timeout): the emulator then exits on its own, and the config file it was started
from (it holds the emulator's API keys) is not left behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from .conftest import eventually

STARTER = """
import time
from prefect_qiskit_jobs.emulator import start_emulator
emulator = start_emulator()
print(emulator.process.pid, flush=True)
time.sleep(600)
"""


def ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # exited, not yet reaped by its new parent
    except psutil.NoSuchProcess:
        return True


def test_a_background_emulator_exits_when_the_process_that_started_it_is_killed() -> None:
    starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE)
    assert starter.stdout is not None
    emulator = psutil.Process(int(starter.stdout.readline()))
    config_file = Path(emulator.cmdline()[3])

    starter.kill()
    starter.wait()
    eventually(lambda: ended(emulator), bool)  # else it outlived the process that started it

    assert not config_file.exists()
