"""Work a stop signal must not cut short: removing what a run made, writing its report.

The plugin turns SIGTERM and SIGHUP into KeyboardInterrupt so that pytest tears down (Ctrl-C is one
already). A signal that arrives while the teardown itself runs (a CI job cancelled twice, a supervisor
that follows SIGTERM with another, or the first one landing as the run ends) would raise inside it and
leave namespaces, daemons or objects behind. Inside `deferred_interrupts` those signals are noted
and said on stderr instead. It guards only work after which the run ends (or re-raises what it is
cleaning up after), so a noted signal has nothing left to stop and is not raised again: raised from
pytest's session finish it would escape pytest and cost the report.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def deferred_interrupts(work: str) -> Iterator[None]:
    """Run the block to its end whatever stop signal comes; `work` names it in what the user is told.
    Signals are only handled on the main thread: elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: FrameType | None) -> None:
        with suppress(OSError, ValueError):  # nobody reads stderr any more: the work matters, not the words
            print(
                f"bgpconform: {signal.Signals(signum).name} received while {work}; finishing that first",
                file=sys.stderr,
                flush=True,
            )

    previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
