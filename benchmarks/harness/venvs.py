"""The peers' virtual environments: one per package, installed from the registry with pip, cached.

Each peer gets an environment of its own, so its dependencies never meet the package's pins. They
live under ``~/.cache/prefect-qiskit-jobs-peers`` (``BENCHMARK_PEERS_CACHE`` overrides it) and are
reused while their marker names the same requirement, so a second run installs nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("BENCHMARK_PEERS_CACHE", Path.home() / ".cache" / "prefect-qiskit-jobs-peers"))
MARKER = ".benchmark-installed"
# What the measured child needs beside the peer: psutil for the harness's sampling helpers.
EXTRAS = ("psutil",)


def peer_python(requirement: str) -> Path:
    """The interpreter of an environment holding ``requirement`` (e.g. ``prefect-qiskit==0.2.1``)."""
    directory = CACHE / requirement.replace("==", "-")
    python = directory / "bin" / "python"
    marker = directory / MARKER
    if python.exists() and marker.exists() and marker.read_text().strip() == requirement:
        return python
    print(f"[peers] installing {requirement} into {directory} (once; cached)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(directory)], check=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", requirement, *EXTRAS],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install {requirement}:\n{done.stderr[-2000:]}")
    marker.write_text(requirement + "\n")
    return python


def installed_versions(python: Path, *distributions: str) -> dict[str, str]:
    """The versions of ``distributions`` in the environment of ``python``."""
    code = (
        "import importlib.metadata as m, json, sys;print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))"
    )
    done = subprocess.run(
        [str(python), "-c", code, *distributions], capture_output=True, text=True, check=True
    )
    versions: dict[str, str] = json.loads(done.stdout)
    return versions
