"""Serve the scenario flows, as ``flow.serve`` users do: ``python -m tests.e2e.serve_scenarios``.

Given flow names (``python -m tests.e2e.serve_scenarios e2e-swept``), it serves only those: a
test that needs an emulator of its own runs such a second serve process, pointed at it, whose
deployments no other serve process takes runs of.
"""

from __future__ import annotations

import sys

from prefect import serve

from tests.e2e.scenario_flows import (
    awaited,
    deferred,
    deferred_sync,
    detached,
    swept,
    synced,
    threaded,
    unhooked,
)

# Served by default, each as deployment "<flow name>/e2e"; swept and deferred only when asked for.
SHARED = (awaited, threaded, unhooked, detached, synced)

if __name__ == "__main__":
    by_name = {flow.name: flow for flow in (*SHARED, swept, deferred, deferred_sync)}
    flows = [by_name[name] for name in sys.argv[1:]] or SHARED
    serve(*(flow.to_deployment(name="e2e") for flow in flows), print_starting_message=False)
