"""Which ``prefect_qiskit_jobs`` is measured: this working tree, or a commit exported with git archive.

With ``--package-rev REV`` that commit's package (emulator included) is exported to a temporary
directory next to a copy of ``benchmarks``, and every process the benchmark starts runs there,
so edits made to the working tree while it runs change nothing. ``python -m`` and ``python -c``
put the current directory first on ``sys.path``, and children also get it first on PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "prefect_qiskit_jobs"


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def uncommitted_package_changes() -> list[str]:
    return [line[3:] for line in git("status", "--porcelain", "--", PACKAGE).splitlines()]


@dataclass(frozen=True)
class CodeUnderTest:
    """Where the measured processes import the package from, and which code that is."""

    directory: Path
    source: str
    commit: str
    head: str
    uncommitted: list[str] = field(default_factory=list)

    def environment(self, *overlays: Mapping[str, str]) -> dict[str, str]:
        """This process's environment plus ``overlays``, with the code directory first on PYTHONPATH."""
        env = dict(os.environ)
        for overlay in overlays:
            env.update(overlay)
        rest = env.get("PYTHONPATH", "")
        env["PYTHONPATH"] = str(self.directory) + (os.pathsep + rest if rest else "")
        return env

    def check_imported(self, module_file: str | None, who: str) -> None:
        """Fail when ``who`` imported the package from anywhere but the code under test."""
        if module_file and not Path(module_file).resolve().is_relative_to(self.directory.resolve()):
            raise RuntimeError(f"{who} imported {PACKAGE} from {module_file}, not from {self.directory}")

    def describe(self) -> str:
        text = f"`{PACKAGE}` from {self.source}, commit `{self.commit[:12]}`"
        if self.uncommitted:
            text += f" plus uncommitted changes to {', '.join(self.uncommitted)}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "commit": self.commit,
            "head": self.head,
            "uncommitted_package_changes": self.uncommitted,
        }


def _export(rev: str, tmp: Path) -> CodeUnderTest:
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}").strip()
    code = tmp / "code"
    code.mkdir(parents=True)
    archive = tmp / "package.tar"
    git("archive", "--format=tar", "-o", str(archive), commit, PACKAGE)
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(code, filter="data")
        else:  # Pythons without extraction filters; this is our own repository's archive
            tar.extractall(code)
    shutil.copytree(
        ROOT / "benchmarks", code / "benchmarks", ignore=shutil.ignore_patterns("results", "__pycache__")
    )
    return CodeUnderTest(code, f"git archive of {rev}", commit, git("rev-parse", "HEAD").strip())


@contextlib.contextmanager
def code_under_test(rev: str | None, tmp: Path) -> Iterator[CodeUnderTest]:
    """Work from the code under test for the block (cwd and ``sys.path``); the cwd is restored after."""
    head = git("rev-parse", "HEAD").strip()
    code = (
        _export(rev, tmp)
        if rev is not None
        else CodeUnderTest(ROOT, "working tree", head, head, uncommitted_package_changes())
    )
    cwd = Path.cwd()
    sys.path.insert(0, str(code.directory))
    os.chdir(code.directory)
    try:
        import prefect_qiskit_jobs

        code.check_imported(prefect_qiskit_jobs.__file__, "the benchmark")
        yield code
    finally:
        os.chdir(cwd)
