"""Limits on what IBM is sent: the job-creation rate and the in-flight cap, on one slot implementation."""
