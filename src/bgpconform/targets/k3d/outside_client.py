"""The k3d run's outside client: `curl` inside the client container, whose only way to LB IPs is its
default route via the router (the plan's client setup). Each request may pin its source port, so the
router's ECMP hashing sees different flows."""

from __future__ import annotations

import time
from ipaddress import IPv4Address

from docker.errors import DockerException

from bgpconform.targets.curl_client import curl_answer, curl_argv
from bgpconform.targets.k3d.containers import StartedContainer
from bgpconform.targets.port import HttpAnswer


class ContainerCurlClient:
    def __init__(self, container: StartedContainer, address: IPv4Address) -> None:
        self.container = container
        self._address = address

    @property
    def address(self) -> IPv4Address:
        return self._address

    def http_get(self, url: str, *, timeout: float, local_port: int | None = None) -> HttpAnswer:
        # curl's --max-time bounds the exec: the Docker API has no timeout of its own for it.
        began = time.monotonic()
        try:
            code, out, err = self.container.exec(curl_argv(url, timeout, local_port), user="")
        except DockerException as exc:
            return HttpAnswer(
                url, local_port, None, "", f"docker exec failed: {exc}", time.monotonic() - began
            )
        elapsed = time.monotonic() - began
        return curl_answer(url, local_port, returncode=code, stdout=out, stderr=err, elapsed=elapsed)
