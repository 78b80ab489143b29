"""What an editor shows for the public API: real types, checked by mypy (strict) and pyright.

``tests/typing/public_api_types.py`` pins the types of calls with ``assert_type``; mypy and pyright
(the engine of VS Code's Pylance) both check it. A third check reveals the type of every name in
``__all__`` and fails if any is ``Any`` (a factory that erases types, a missing annotation).
qiskit ships no ``py.typed``: mypy reads its classes as ``Any``, pyright reads its sources, which
leave a few compiled types unknown, so pyright's "unknown" reports are off in
``tests/typing/pyrightconfig.json`` while its ``assert_type`` checks stay on.
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


def test_pyright_sees_the_same_types() -> None:
    pyright = [sys.executable, "-m", "pyright", "--pythonpath", sys.executable]
    config = ROOT / "tests" / "typing" / "pyrightconfig.json"

    command = [*pyright, "-p", str(config)]

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 errors" in done.stdout


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
