"""The outside client as `curl` run where the topology puts the client: the lab's client namespace, a
namespace or this machine, or a host over SSH. Each request may pin its source port, so the router's
ECMP hashing sees different flows."""

from __future__ import annotations

import time
from ipaddress import IPv4Address

from bgpconform.commands import Place
from bgpconform.disruption.request_stream import LineStream, process_stream, stream_argv
from bgpconform.errors import CommandError
from bgpconform.targets.port import HttpAnswer

_STATUS_MARK = "\n@@bgpconform-http-status:"


def curl_argv(url: str, timeout: float, local_port: int | None) -> list[str]:
    """curl printing the body, then the status after a mark; `--max-time` bounds the whole request."""
    argv = ["curl", "-sS", "--max-time", f"{timeout:g}", "-w", _STATUS_MARK + "%{http_code}"]
    if local_port is not None:
        argv += ["--local-port", str(local_port)]
    return [*argv, url]


def curl_answer(
    url: str, local_port: int | None, *, returncode: int, stdout: str, stderr: str, elapsed: float
) -> HttpAnswer:
    """What `curl_argv` printed, as an answer: the body, the status, or curl's error."""
    body, _, code = stdout.rpartition(_STATUS_MARK)
    if returncode != 0:
        error = stderr.strip() or f"curl exit code {returncode}"
        return HttpAnswer(url, local_port, None, body, error, elapsed)
    return HttpAnswer(url, local_port, int(code) if code.isdigit() else None, body, None, elapsed)


class CurlClient:
    def __init__(self, place: Place, address: IPv4Address) -> None:
        self.place = place
        self._address = address

    @property
    def address(self) -> IPv4Address:
        return self._address

    def http_get(self, url: str, *, timeout: float, local_port: int | None = None) -> HttpAnswer:
        began = time.monotonic()
        try:
            done = self.place.run(curl_argv(url, timeout, local_port), check=False, timeout=timeout + 5)
        except CommandError as exc:  # curl (or ssh) missing, or no answer at all
            return HttpAnswer(url, local_port, None, "", str(exc), time.monotonic() - began)
        elapsed = time.monotonic() - began
        return curl_answer(
            url,
            local_port,
            returncode=done.returncode,
            stdout=done.stdout,
            stderr=done.stderr,
            elapsed=elapsed,
        )

    def request_stream(self, url: str, *, rate: int, timeout: float, lifetime: float) -> LineStream:
        return process_stream(
            self.place.argv(stream_argv(url, rate=rate, timeout=timeout, lifetime=lifetime))
        )

    def reaches(self, address: IPv4Address, timeout: float = 3.0) -> str | None:
        """Why the client cannot reach `address` (one ping), or None when it can."""
        argv = ["ping", "-c", "1", "-W", f"{max(1, round(timeout))}", str(address)]
        try:
            done = self.place.run(argv, check=False, timeout=timeout + 10)
        except CommandError as exc:
            return str(exc)
        if done.returncode == 0:
            return None
        detail = (done.stderr or done.stdout).strip().splitlines()
        return detail[-1] if detail else f"ping exit code {done.returncode}"
