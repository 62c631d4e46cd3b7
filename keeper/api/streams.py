"""Caps on long-lived responses (server-sent events), per process and per caller.

A stream holds one thread of the worker's stream pool for its whole life (keeper/server.py), so
the number open at once is bounded below the pool's size; one caller gets only a share of it.
Counts are per process: with N worker processes a caller holds at most N times its share.
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from rest_framework import exceptions


class TooManyStreams(exceptions.Throttled):
    default_code = "too_many_streams"


@dataclass
class StreamSlots:
    """Open streams by caller; `limits()` -> (per process, per caller, longest life in seconds)."""

    limits: Callable[[], tuple[int, int, float]]
    clock: Callable[[], float] = time.monotonic
    _open: dict[str, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, caller: str, content: Iterable[bytes]) -> Iterator[bytes]:
        """`content`, counted against the caps until it ends or is closed; TooManyStreams if full."""
        per_process, per_caller, longest = self.limits()
        with self._lock:
            now = self.clock()
            mine = self._open.setdefault(caller, [])
            total = sum(len(starts) for starts in self._open.values())
            if len(mine) >= per_caller:
                wait = min(mine) + longest - now
                detail = f"You have {len(mine)} streams open already (at most {per_caller})."
            elif total >= per_process:
                oldest = min(start for starts in self._open.values() for start in starts)
                wait = oldest + longest - now
                detail = "Too many streams are open on this server; try again later."
            else:
                mine.append(now)
                return _Counted(content, lambda: self._close(caller, now))
            if not mine:
                del self._open[caller]
        raise TooManyStreams(wait=max(int(wait + 0.999), 1), detail=detail)

    def count(self, caller: str | None = None) -> int:
        with self._lock:
            if caller is not None:
                return len(self._open.get(caller, ()))
            return sum(len(starts) for starts in self._open.values())

    def _close(self, caller: str, started: float) -> None:
        with self._lock:
            starts = self._open.get(caller, [])
            if started in starts:
                starts.remove(started)
            if not starts:
                self._open.pop(caller, None)


class _Counted:
    """An iterator that frees its slot once, when exhausted or closed (even if never started)."""

    def __init__(self, content: Iterable[bytes], release: Callable[[], None]):
        self._content = iter(content)
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> "_Counted":
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._content)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close = getattr(self._content, "close", None)
            if close is not None:
                close()
        finally:
            release()
