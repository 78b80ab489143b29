"""Submitting jobs: the typed submit tasks, the checks before a POST, idempotency, sessions and batches."""
