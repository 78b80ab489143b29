"""The emulator's HTTP routes, one router per service the client talks to, and the admin routes."""

from __future__ import annotations

from . import admin, backends, directory, iam, jobs, sessions
from .common import CODE_INVALID_JOB, ApiError, Emulator

ROUTERS = (iam.router, directory.router, backends.router, jobs.router, sessions.router, admin.router)

__all__ = ["CODE_INVALID_JOB", "ROUTERS", "ApiError", "Emulator"]
