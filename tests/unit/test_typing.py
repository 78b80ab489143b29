"""What an editor shows for the public API: real types, checked by mypy in strict mode.

``tests/typing/public_api_types.py`` pins the types of calls with ``assert_type``; a second check
reveals the type of every name in ``__all__`` and fails if any is ``Any`` (a factory that erases
types, a missing annotation). Both run mypy as a user's project would: on files that import the
installed package.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import prefect_qiskit_jobs

ROOT = Path(__file__).resolve().parents[2]
MYPY = [sys.executable, "-m", "mypy", "--strict", "--no-warn-unused-ignores"]


def run_mypy(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MYPY, str(path)], cwd=ROOT, capture_output=True, text=True, check=False)


def test_the_typed_calls_have_the_types_the_file_pins() -> None:
    done = run_mypy(ROOT / "tests" / "typing" / "public_api_types.py")

    assert done.returncode == 0, done.stdout + done.stderr


def test_no_public_name_is_typed_any(tmp_path: Path) -> None:
    names = prefect_qiskit_jobs.__all__
    probe = tmp_path / "reveal_public_names.py"
    probe.write_text(
        "import prefect_qiskit_jobs\n" + "".join(f"reveal_type(prefect_qiskit_jobs.{n})\n" for n in names)
    )

    done = run_mypy(probe)

    revealed = re.findall(r'Revealed type is "(.*)"', done.stdout)
    assert len(revealed) == len(names), done.stdout + done.stderr
    untyped = [name for name, shown in zip(names, revealed, strict=True) if shown == "Any"]
    assert untyped == []
