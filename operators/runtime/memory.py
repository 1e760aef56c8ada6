"""Keep the sidecar's resident memory small.

glibc gives threads their own malloc arenas (up to 8 per core), each holding on to freed
memory of its own; a process with a handful of busy threads (watches, workers, events) ends up
with several half-empty heaps. Two arenas are plenty for an I/O-bound operator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("remora.operators.memory")

M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas (call before starting threads); False where that is not possible."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no arenas to limit)
    ok = bool(mallopt(M_ARENA_MAX, count))
    if not ok:
        log.debug("mallopt(M_ARENA_MAX) refused")
    return ok
