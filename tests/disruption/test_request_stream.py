"""The request stream is one real curl: against a server on loopback it paces, numbers and reports each
request, a new connection from a new source port every time, and stops when told."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest

from bgpconform.disruption.request_stream import PROBE_QUERY, parse_line, process_stream, stream_argv
from bgpconform.finding import Finding
from bgpconform.waiting import consistently, wait_for

RATE = 20


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        body = b"<title>Welcome to nginx!</title>"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.paths = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@dataclass(frozen=True)
class _Unchanged:
    count: int

    @property
    def expected(self) -> str:
        return f"still {self.count} requests at the server"

    def __call__(self, observed: int) -> Finding:
        return Finding(observed == self.count, self.expected, f"{observed} requests")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_stream_numbers_each_request_and_opens_a_new_connection_each_time(server: str) -> None:
    stream = process_stream(stream_argv(server, rate=RATE, timeout=1.0, lifetime=60))
    try:
        wait_for(stream.answers, lambda got: len(got) >= 10, expected="ten answers", timeout=15)
    finally:
        answers = stream.stop()
    assert [a.sequence for a in answers] == list(range(1, len(answers) + 1))
    assert all(a.status == 200 and not a.error for a in answers)
    ports = [a.local_port for a in answers]
    assert None not in ports
    assert len(set(ports)) == len(ports), ports  # Connection: close, so a new source port each time
    assert _Recorder.paths[:3] == [f"/?{PROBE_QUERY}={n}" for n in (1, 2, 3)]
    spread = answers[-1].received - answers[0].received
    assert spread >= (len(answers) - 1) / RATE * 0.8  # curl --rate paces them


def test_a_refused_connection_is_an_answer_with_curls_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/"
    stream = process_stream(stream_argv(url, rate=RATE, timeout=1.0, lifetime=60))
    try:
        wait_for(stream.answers, lambda got: len(got) >= 3, expected="three answers", timeout=15)
    finally:
        answers = stream.stop()
    assert all(a.status is None for a in answers)
    assert all("Couldn't connect" in a.error or "Failed to connect" in a.error for a in answers), answers


def test_stopping_ends_the_curl_process(server: str) -> None:
    """Half a second after `stop`, ten more requests would have reached the server at this rate."""
    stream = process_stream(stream_argv(server, rate=RATE, timeout=1.0, lifetime=60))
    wait_for(stream.answers, bool, expected="an answer", timeout=15)
    stream.stop()
    consistently(lambda: len(_Recorder.paths), _Unchanged(len(_Recorder.paths)), duration=0.5)


def test_lines_that_are_not_the_streams_own_are_ignored() -> None:
    assert parse_line("curl: (7) Failed to connect\n", 1, 0.0) is None
    parsed = parse_line(
        "@@bgpconform-probe 000 0 1.001 28 Connection timed out after 1001 milliseconds\n", 4, 9.0
    )
    assert parsed is not None
    assert (parsed.sequence, parsed.status, parsed.local_port) == (4, None, None)
    assert parsed.error == "Connection timed out after 1001 milliseconds"
    assert parsed.elapsed == pytest.approx(1.001)
