"""Waiting for jobs: the wait tasks, the sensor, the watcher and its schedule, displays, deferral."""
