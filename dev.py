#!/usr/bin/env python3
"""The ways in: ``python3 dev.py demo`` runs the demo, ``python3 dev.py test`` runs every check.

``python3 dev.py docs`` builds the documentation site into ``site/`` (``mkdocs build --strict``);
``python3 dev.py docs --serve`` serves it on http://127.0.0.1:8000, rebuilding on change.

Standard library only, so it runs on a fresh clone: it makes ``.venv`` beside this file, installs the
package with its emulator and development extras into it once (again when pyproject.toml changes),
then runs the command inside it. The demo and the tests need nothing else: they start their own
IBM Quantum Platform emulator and Prefect API on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed-from"

MKDOCS = [str(PYTHON), "-m", "mkdocs"]
BUILD_DOCS = [*MKDOCS, "build", "--strict"]  # a broken link or reference, or a docstring warning, fails
SERVE_DOCS = [*MKDOCS, "serve", "--strict", "--dev-addr", "127.0.0.1:8000"]

# Three workers on CI's two cores: many tests wait on processes, queues and time windows, so with
# one worker per core the machine sat idle a fifth of the run (21 %, /proc/stat read each second);
# with three it was busy 96 % of the time and the suite took 19.1 minutes against 20.5 and 20.8
# (docs/development.md). Four measured slower earlier and starved timing-bound tests. Each test
# file runs whole on one worker, with the fixtures it shares, in collection order: the suite's
# conftest puts the longest files first (xdist's own reordering, by number of tests, would send
# them last).
PARALLEL = ["-n", "3", "--dist", "loadfile", "--no-loadscope-reorder"]
COVERAGE = ["--cov", "--cov-report=term"]
# The slowest tests, printed at the end of each run: where the suite's time goes.
DURATIONS = ["--durations=25"]

COMMANDS = {
    "demo": [[str(PYTHON), "-m", "flows.quickstart"]],
    "test": [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "mypy")],
        BUILD_DOCS,
        [
            str(PYTHON),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            *PARALLEL,
            *COVERAGE,
            *DURATIONS,
            *sys.argv[2:],
        ],
    ],
    "docs": [SERVE_DOCS if "--serve" in sys.argv[2:] else BUILD_DOCS],
}


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script is what tells an old Python so
        sys.exit(f"Python 3.11 or newer is needed, not {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PYTHON.exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing prefect-qiskit-jobs with its emulator and dev extras into .venv ...", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


# Prefect's temporary local server gets 20 s to start by default, too few on a busy laptop or CI
# box; its telemetry write races its own start-up and logs a spurious "database is locked".
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    ensure_environment()
    os.chdir(ROOT)
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for command in COMMANDS[sys.argv[1]]:
        code = subprocess.call(command)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
