"""Stored results as files: their size, and deleting one so that only one deleter counts it.

Prefect's result storage blocks can read and write a path but not delete one, so cleanup reaches
the files beneath: a ``LocalFileSystem`` folder (Prefect's default, ``PREFECT_LOCAL_STORAGE_PATH``)
or a ``RemoteFileSystem`` (fsspec: S3, GCS, ...). Results are stored as one record per key, the
key being the path under the storage's base path, as ``ResultStore`` writes them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from prefect.filesystems import LocalFileSystem, RemoteFileSystem, WritableFileSystem

from prefect_qiskit_jobs.errors import ConfigurationError


def _local_path(storage: LocalFileSystem, key: str) -> Path:
    return Path(storage.basepath or ".").expanduser().resolve() / key


def _remote_path(storage: RemoteFileSystem, key: str) -> str:
    return f"{storage.basepath.rstrip('/')}/{key}"


def _unsupported(storage: WritableFileSystem) -> ConfigurationError:
    return ConfigurationError(
        f"Cannot delete stored results from {type(storage).__name__} result storage: cleanup "
        "deletes from LocalFileSystem or RemoteFileSystem storage only"
    )


def stored_size(storage: WritableFileSystem, key: str) -> int | None:
    """Bytes of the record stored under ``key``; None when nothing is stored there."""
    try:
        if isinstance(storage, LocalFileSystem):
            return _local_path(storage, key).stat().st_size
        if isinstance(storage, RemoteFileSystem):
            return int(storage.filesystem.size(_remote_path(storage, key)))
    except FileNotFoundError:
        return None
    raise _unsupported(storage)


def delete_stored(storage: WritableFileSystem, key: str) -> int | None:
    """Delete the record stored under ``key``; the bytes freed, or None when nothing was there.

    On a local folder the record is first renamed to a name of this call's own (atomic: of two
    processes deleting it at once, one wins and the other finds nothing), so only the winner counts
    it and its bytes. fsspec offers no such rename everywhere: of two remote deleters both may count it.
    """
    if isinstance(storage, LocalFileSystem):
        path = _local_path(storage, key)
        claimed = path.with_name(f"{path.name}.deleting-{uuid.uuid4().hex}")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            return None
        size = claimed.stat().st_size
        claimed.unlink()
        return size
    if isinstance(storage, RemoteFileSystem):
        found = stored_size(storage, key)
        if found is None:
            return None
        try:
            storage.filesystem.rm(_remote_path(storage, key))
        except FileNotFoundError:
            return None
        return found
    raise _unsupported(storage)
