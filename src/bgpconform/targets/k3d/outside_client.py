"""The k3d run's outside client: `curl` inside the client container, whose only way to LB IPs is its
default route via the router (the plan's client setup). Each request may pin its source port, so the
router's ECMP hashing sees different flows."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

from docker.errors import DockerException

from bgpconform.disruption.request_stream import PROBE_QUERY, LineStream, stream_argv
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

    def request_stream(self, url: str, *, rate: int, timeout: float, lifetime: float) -> LineStream:
        """The stream as a `docker exec` whose stderr is read as it comes; stopping it kills the curl
        in the container (the exec API has no signal of its own)."""
        wrapped = self.container.container.get_wrapped_container()
        argv = stream_argv(url, rate=rate, timeout=timeout, lifetime=lifetime)
        result = wrapped.exec_run(argv, stream=True, demux=True, user="")

        def lines() -> Iterator[str]:
            pending = ""
            for _, err in result.output:
                pending += (err or b"").decode(errors="replace")
                *complete, pending = pending.split("\n")
                for line in complete:
                    yield line + "\n"

        def stop() -> None:
            with contextlib.suppress(DockerException):  # a container gone took the stream with it
                wrapped.exec_run(["pkill", "-f", PROBE_QUERY], user="")

        return LineStream(lines(), stop, time.monotonic)
