"""Every runnable example in the package's docstrings runs, and says what it claims.

Examples that need IBM or a Prefect server are marked ``# doctest: +SKIP``; the README's examples
run against the emulator in ``tests/integration/lifecycle/test_readme.py``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import prefect_qiskit_jobs

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(prefect_qiskit_jobs.__path__, prefix="prefect_qiskit_jobs.")
    if not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_of_each_module_run(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={**vars(module)}):
        runner.run(test)
    results = runner.summarize(verbose=False)

    assert results.failed == 0


def test_some_examples_really_run() -> None:
    """Guards against every example being skipped: the pure ones must execute."""
    attempted = 0
    for name in MODULES:
        module = importlib.import_module(name)
        for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
            attempted += sum(1 for example in test.examples if not example.options.get(doctest.SKIP))
    assert attempted >= 10
