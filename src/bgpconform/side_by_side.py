"""Child runs side by side (the matrix's cells, the suite's shards): a stop reaches every one.

A terminal's Ctrl-C reaches the children anyway (they share the command's process group); a SIGTERM
from a CI job that cancels reaches only the command, so it is passed on to each child still running,
as is every Ctrl-C the command itself sees. Each child then takes its lab down and writes what it
saw; the command waits for all of them and says what they wrote, never leaving them running.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TypeVar

T = TypeVar("T")


class Children:
    """The child processes still running, so a stop signal can be passed on to each one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[subprocess.Popen[bytes]] = []
        self.stopped = False

    def add(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.append(process)
            if self.stopped:
                process.send_signal(signal.SIGINT)  # started as the stop arrived

    def remove(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._running.remove(process)

    def stop(self, sig: int) -> None:
        with self._lock:
            self.stopped = True
            for process in self._running:
                if process.poll() is None:
                    process.send_signal(sig)


def run_child(command: Sequence[str], *, cwd: Path, log: Path, children: Children) -> int:
    """The child's exit status, its output (both streams) in `log`."""
    with (
        log.open("wb") as stream,
        subprocess.Popen(list(command), cwd=cwd, stdout=stream, stderr=subprocess.STDOUT) as child,
    ):
        children.add(child)
        try:
            return child.wait()
        finally:
            children.remove(child)


@contextmanager
def stops_passed_on(children: Children) -> Iterator[None]:
    """A SIGTERM to this process goes to each child instead of ending this one."""

    def pass_on(sig: int, _frame: FrameType | None) -> None:
        children.stop(sig)

    previous = signal.signal(signal.SIGTERM, pass_on)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_all(futures: Sequence[Future[T]], children: Children, progress: Callable[[T], None]) -> None:
    """Until every child's work has ended, telling of each; a Ctrl-C here goes on to the children."""
    pending = set(futures)
    while pending:
        try:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
        except KeyboardInterrupt:
            children.stop(signal.SIGINT)
            continue
        for future in done:
            progress(future.result())
