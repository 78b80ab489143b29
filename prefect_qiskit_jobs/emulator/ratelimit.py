"""IBM's job-creation rate limit: at most N jobs created per rolling window, per API key."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from .config import JobRateLimitSpec


class JobRateLimit:
    """Admits job creations per account within ``spec.jobs`` per rolling ``spec.window_seconds``.

    A creation takes a place in its account's window when admitted (so two requests handled at
    once cannot both take the last place) and gives it back if the job is then not created.

    Example:
        >>> limit = JobRateLimit(JobRateLimitSpec.parse("1/60"), clock=lambda: 0.0)
        >>> limit.admit("a"), limit.admit("a"), limit.admit("b")
        (None, 60, None)
    """

    def __init__(self, spec: JobRateLimitSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec, self._clock = spec, clock
        self._lock = threading.Lock()
        self._created: defaultdict[str, deque[float]] = defaultdict(deque)

    def admit(self, account: str) -> int | None:
        """Take a place for one creation: None when admitted, else the seconds until one frees (≥ 1)."""
        now = self._clock()
        with self._lock:
            window = self._created[account]
            while window and window[0] <= now - self.spec.window_seconds:
                window.popleft()
            if len(window) < self.spec.jobs:
                window.append(now)
                return None
            return max(1, math.ceil(window[0] + self.spec.window_seconds - now))

    def give_back(self, account: str) -> None:
        """Return the newest place of ``account``: the request it admitted created no job."""
        with self._lock:
            if self._created[account]:
                self._created[account].pop()

    def reset(self) -> None:
        with self._lock:
            self._created.clear()
