"""Code run in the measured child processes (``python -m benchmarks.children.<name>``)."""
