"""Serve the scenario flows, as ``flow.serve`` users do: ``python -m tests.e2e.serve_scenarios``."""

from __future__ import annotations

from prefect import serve

from tests.e2e.scenario_flows import awaited, detached, synced, threaded, unhooked

if __name__ == "__main__":
    serve(
        awaited.to_deployment(name="e2e"),
        threaded.to_deployment(name="e2e"),
        unhooked.to_deployment(name="e2e"),
        detached.to_deployment(name="e2e"),
        synced.to_deployment(name="e2e"),
        print_starting_message=False,
    )
