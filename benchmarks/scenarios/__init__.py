"""One module per scenario; each has ``run(bench) -> Summary`` and is imported only when run.

Modules import the package inside ``run``, after ``--package-rev`` has decided where it comes from.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from benchmarks.harness.context import Bench
from benchmarks.summary import Summary

NAMES = ("polling", "scale", "overhead", "cancel", "ratelimit", "deferral", "chaos", "emulator", "peers")


def runner(name: str) -> Callable[[Bench], Summary]:
    module = importlib.import_module(f"benchmarks.scenarios.{name}")
    run: Callable[[Bench], Summary] = module.run
    return run
