"""A worker's own metrics directory: made at start, removed at stop, left-overs swept.

``celery -A worker worker`` started without ``PROMETHEUS_MULTIPROC_DIR`` gets a
directory of its own in the temporary directory (``worker.py``), and removes it
when it stops (``dispatcher.worker.bootstrap``). A worker killed outright cannot:
so each worker holds a lock on a file in its directory for as long as it (or a
pool process it forked) lives, and every worker that starts removes the
directories whose lock nobody holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "dispatcher-metrics-"
LOCK_FILE = ".owner.lock"
# A directory younger than this is left alone even without a lock: its worker
# may be between making it and locking it.
GRACE_SECONDS = 60.0

# The descriptors that hold this process's locks; closed only by its exit.
_held: list[int] = []


def _owned(directory: Path) -> bool:
    """Whether a living process holds ``directory``'s lock."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # Not ours to judge (another user's, say): leave it.
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # Closing also releases the lock just taken.
    return False


def sweep(parent: Path, now: float | None = None) -> list[Path]:
    """Remove the metrics directories under ``parent`` that no living worker holds."""
    now = time.time() if now is None else now
    removed = []
    for directory in parent.glob(f"{PREFIX}*"):
        try:
            if directory.is_symlink() or not directory.is_dir():
                continue
            if now - directory.stat().st_mtime < GRACE_SECONDS:
                continue
        except OSError:
            continue
        if not _owned(directory):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def claim(parent: Path | None = None) -> Path:
    """Sweep ``parent`` (the temporary directory), then make and lock a directory there."""
    parent = Path(tempfile.gettempdir()) if parent is None else parent
    with contextlib.suppress(OSError):
        sweep(parent)
    directory = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held.append(fd)
    return directory
