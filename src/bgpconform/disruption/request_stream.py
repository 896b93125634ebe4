"""A steady stream of HTTP requests from the outside client, as one long-running `curl`.

One process for the whole stream keeps the client's cost low enough for a high rate on a small machine:
`curl --rate` paces the requests, a URL glob gives each its own sequence number (which the backend's
access log then shows, so each request's entry node can be found), `Connection: close` makes every
request a new connection from a new source port (a new flow for the router's ECMP hash), and `-w`
writes one line per request to stderr (unbuffered, so each arrives when the request ends). A
`timeout` around it ends a stream nobody stopped, wherever it runs (a namespace, a container, ssh).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

PROBE_QUERY = "bgpconform-probe"
_MARK = "@@bgpconform-probe "
_FIELDS = "%{http_code} %{local_port} %{time_total} %{exitcode} %{errormsg}"
LAST_SEQUENCE = 9_999_999


@dataclass(frozen=True)
class StreamedAnswer:
    """One request of the stream as the client saw it; `received` is the harness's clock."""

    sequence: int
    status: int | None
    local_port: int | None
    elapsed: float
    error: str
    received: float


def stream_url(url: str) -> str:
    """The stream's URL glob: `url?bgpconform-probe=N` for N = 1, 2, ..."""
    return f"{url}?{PROBE_QUERY}=[1-{LAST_SEQUENCE}]"


def stream_argv(url: str, *, rate: int, timeout: float, lifetime: float) -> list[str]:
    return [
        "timeout", f"{lifetime:g}",
        "curl", "-s", "-o", "/dev/null",
        "--rate", f"{rate}/s",
        "--max-time", f"{timeout:g}",
        "-H", "Connection: close",
        "-w", "%{stderr}" + _MARK + _FIELDS + "\\n",
        stream_url(url),
    ]  # fmt: skip


def parse_line(line: str, sequence: int, received: float) -> StreamedAnswer | None:
    """A `-w` line as an answer; None for anything else on stderr."""
    if not line.startswith(_MARK):
        return None
    parts = line[len(_MARK) :].rstrip("\n").split(" ", 4)
    if len(parts) < 4:
        return None
    code, port, total, exitcode = parts[:4]
    error = parts[4].strip() if len(parts) > 4 else ""
    status = int(code) if code.isdigit() and code != "000" else None
    if exitcode not in ("", "0") and not error:
        error = f"curl exit code {exitcode}"
    try:
        elapsed = float(total)
    except ValueError:
        elapsed = 0.0
    return StreamedAnswer(
        sequence, status, int(port) if port.isdigit() and port != "0" else None, elapsed, error, received
    )


class RequestStream(Protocol):
    """A stream running at the outside client, whatever runs it (a process, a container's exec)."""

    def answers(self) -> list[StreamedAnswer]:
        """Every answer so far, in the order the requests ended."""

    def stop(self, timeout: float = 10.0) -> list[StreamedAnswer]:
        """End the stream and return every answer."""


class StreamingClient(Protocol):
    """What the probe needs of the outside client (`bgpconform.targets.port.OutsideClient` has it)."""

    def request_stream(self, url: str, *, rate: int, timeout: float, lifetime: float) -> RequestStream:
        """Start `rate` requests a second to `url`, each a new connection, until stopped or `lifetime`."""


class LineStream:
    """Reads a stream's lines in a thread as they come and keeps the answers; `stop` ends it."""

    def __init__(self, lines: Iterable[str], stop: Callable[[], None], clock: Callable[[], float]) -> None:
        self._lines = lines
        self._stop = stop
        self._clock = clock
        self._answers: list[StreamedAnswer] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="request-stream", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        sequence = 0
        for line in self._lines:
            answer = parse_line(line, sequence + 1, self._clock())
            if answer is None:
                continue
            sequence += 1
            with self._lock:
                self._answers.append(answer)

    def answers(self) -> list[StreamedAnswer]:
        with self._lock:
            return list(self._answers)

    def stop(self, timeout: float = 10.0) -> list[StreamedAnswer]:
        self._stop()
        self._thread.join(timeout)
        return self.answers()


def process_stream(argv: Sequence[str], clock: Callable[[], float] = time.monotonic) -> LineStream:
    """The stream as a local process (here, in a namespace, or the ssh that runs it elsewhere)."""
    process = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    return LineStream(process.stderr, stop, clock)
