"""Reading IBM's newest-first job listing whole while it changes: no I/O of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


# IBM's own default page (its API reference: ``limit``, default 200): a sweep of 10,000 jobs is 50 requests.
PAGE_SIZE = 200
LISTING_PASSES = 3


def collect_listing(
    fetch_page: Callable[[int, int], dict[str, Any]],
    *,
    limit: int | None = None,
    page_size: int = PAGE_SIZE,
    passes: int = LISTING_PASSES,
) -> list[dict[str, Any]]:
    """Every job of IBM's newest-first listing, read page by page with ``fetch_page(skip, limit)``.

    The listing changes while it is read. A job created meanwhile is prepended and pushes the rest
    down, so a job is seen twice (kept once). A job that leaves the listed set (a pending job that
    ends) pulls every later job up one place, and the one that crosses the cursor is never seen; an
    orphan, to the cancellation hooks and the reaper. Only that can make a later page's ``count``
    smaller than an earlier one's, so then the whole listing is read again, up to ``passes`` times
    in all, until a pass sees no shrinking. The answer is the union of the passes: each job once,
    as last seen, newest first (a job that ended between passes keeps the entry it had).

    Pure apart from ``fetch_page``, which answers as IBM does: ``{"jobs": [...], "count": N}``.

    Example:
        >>> jobs = [{"id": f"job-{n}"} for n in range(5)]
        >>> fetch = lambda skip, size: {"jobs": jobs[skip : skip + size], "count": len(jobs)}
        >>> [job["id"] for job in collect_listing(fetch, page_size=2)]
        ['job-0', 'job-1', 'job-2', 'job-3', 'job-4']
    """
    latest: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for _ in range(max(passes, 1)):
        seen, shrank = _read_pass(fetch_page, limit, page_size)
        order = _merge_newest_first(order, [job_id for job_id, _job in seen])
        latest.update(seen)
        if not shrank:
            break
    jobs = [latest[job_id] for job_id in order]
    return jobs if limit is None else jobs[:limit]


def _read_pass(
    fetch_page: Callable[[int, int], dict[str, Any]], limit: int | None, page_size: int
) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """One pass over the pages: what it saw, in order, and whether ``count`` shrank on the way."""
    seen: list[tuple[str, dict[str, Any]]] = []
    highest_count: int | None = None
    shrank = False
    while True:
        size = page_size if limit is None else min(page_size, limit - len(seen))
        answer = fetch_page(len(seen), size)
        page = answer.get("jobs") or []
        count = int(answer.get("count", 0))
        shrank = shrank or (highest_count is not None and count < highest_count)
        highest_count = count if highest_count is None else max(highest_count, count)
        seen.extend((job["id"], job) for job in page)
        if not page or len(seen) >= count or (limit is not None and len(seen) >= limit):
            return seen, shrank


def _merge_newest_first(earlier: list[str], later: list[str]) -> list[str]:
    """The ids of two readings of one newest-first listing, each once, in that order.

    ``later``'s order stands; an id only ``earlier`` holds goes right after the nearest id before
    it there that ``later`` holds too (or first, when there is none).
    """
    in_later = set(later)
    after: dict[str | None, list[str]] = {}
    anchor: str | None = None
    for job_id in earlier:
        if job_id in in_later:
            anchor = job_id
        else:
            after.setdefault(anchor, []).append(job_id)
    merged = list(after.get(None, []))
    for job_id in dict.fromkeys(later):
        merged.append(job_id)
        merged.extend(after.get(job_id, []))
    return merged
