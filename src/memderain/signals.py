"""SIGTERM handled like Ctrl-C: ``kill``, ``timeout`` or a service manager stopping a command
then runs the same clean-up as an interrupt (temporary files removed, ``.resume`` states
written), instead of ending the process where it stands."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Guard:
    received = False


@contextmanager
def sigterm_as_interrupt() -> Iterator[_Guard]:
    """For the duration of the block, SIGTERM raises :class:`KeyboardInterrupt` in the main
    thread (where Python runs signal handlers); ``guard.received`` says whether it came. Off
    the main thread (signals cannot be handled there) the block runs unchanged."""
    guard = _Guard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return

    def handler(signum, frame):
        guard.received = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield guard
    finally:
        signal.signal(signal.SIGTERM, previous)
