"""Cancelling jobs exactly once: the fan-out, flow hooks, the reaper, the zombie-run automation."""
