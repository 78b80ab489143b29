"""Example flows: run them with ``python -m flows.<name>`` from the repository root."""
