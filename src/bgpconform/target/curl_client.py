"""The outside client as `curl` run where the topology puts the client: the lab's client namespace, a
namespace or this machine, or a host over SSH. Each request may pin its source port, so the router's
ECMP hashing sees different flows."""

from __future__ import annotations

import time
from ipaddress import IPv4Address

from bgpconform.errors import CommandError
from bgpconform.places import Place
from bgpconform.target.port import HttpAnswer

_STATUS_MARK = "\n@@bgpconform-http-status:"


class CurlClient:
    def __init__(self, place: Place, address: IPv4Address) -> None:
        self.place = place
        self._address = address

    @property
    def address(self) -> IPv4Address:
        return self._address

    def http_get(self, url: str, *, timeout: float, local_port: int | None = None) -> HttpAnswer:
        argv = ["curl", "-sS", "--max-time", f"{timeout:g}", "-w", _STATUS_MARK + "%{http_code}"]
        if local_port is not None:
            argv += ["--local-port", str(local_port)]
        began = time.monotonic()
        try:
            done = self.place.run([*argv, url], check=False, timeout=timeout + 5)
        except CommandError as exc:  # curl (or ssh) missing, or no answer at all
            return HttpAnswer(url, local_port, None, "", str(exc), time.monotonic() - began)
        elapsed = time.monotonic() - began
        body, _, code = done.stdout.rpartition(_STATUS_MARK)
        if done.returncode != 0:
            error = done.stderr.strip() or f"curl exit code {done.returncode}"
            return HttpAnswer(url, local_port, None, body, error, elapsed)
        return HttpAnswer(url, local_port, int(code) if code.isdigit() else None, body, None, elapsed)

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
