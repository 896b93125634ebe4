"""The traffic probe: a request stream from the outside client and router samples on one clock.

Requests and router state are both timed by this process's monotonic clock, so a failed request can
be set beside the session that went down and the path the router withdrew. The router is sampled at
a fixed period (`Disruption.sample_interval`): that is the probe's resolution, not a wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Network

from bgpconform.disruption.request_stream import RequestStream, StreamedAnswer, StreamingClient
from bgpconform.disruption.timeline import Mark, RequestSample, RouterSample, Timeline, TimelineBuilder
from bgpconform.routers.port import RouterPort
from bgpconform.topology import Disruption

# A stream nobody stops ends by itself after this long, wherever it runs.
STREAM_LIFETIME = 900.0


def router_sample(router: RouterPort, prefix: IPv4Network, at: float) -> RouterSample:
    sessions = {str(s.peer): s.state.value for s in router.sessions()}
    paths = sorted({str(hop) for route in router.bgp_routes(prefix) for hop in route.nexthops})
    hops = sorted({str(hop) for route in router.fib_routes(prefix) for hop in route.nexthops})
    return RouterSample(at=at, sessions=sessions, paths=tuple(paths), nexthops=tuple(hops))


class TrafficProbe:
    """Runs from `start` to `stop`; `mark` notes the scenario's moments, `stop` returns the timeline."""

    def __init__(
        self,
        client: StreamingClient,
        router: RouterPort,
        *,
        url: str,
        prefix: IPv4Network,
        settings: Disruption,
        title: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.router = router
        self.url = url
        self.prefix = prefix
        self.settings = settings
        self.clock = clock
        self._builder = TimelineBuilder(title)
        self._began = 0.0
        self._stream: RequestStream | None = None
        self._stopped = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="router-sampler", daemon=True)
        self._lock = threading.Lock()
        self._sample_errors: list[str] = []

    def now(self) -> float:
        """Seconds since the probe started."""
        return self.clock() - self._began

    def start(self) -> None:
        self._began = self.clock()
        self._stream = self.client.request_stream(
            self.url,
            rate=self.settings.rate,
            timeout=self.settings.request_timeout,
            lifetime=STREAM_LIFETIME,
        )
        self._sampler.start()

    def mark(self, label: str) -> float:
        at = self.now()
        with self._lock:
            self._builder.marks.append(Mark(at=at, label=label))
        return at

    def _sample(self) -> None:
        while not self._stopped.is_set():
            at = self.now()
            try:
                sample = router_sample(self.router, self.prefix, at)
            except Exception as exc:  # a router that does not answer for a moment is part of the picture
                self._sample_errors.append(f"{at:.1f} s: {exc}")
            else:
                with self._lock:
                    self._builder.router.append(sample)
            self._stopped.wait(self.settings.sample_interval)

    def router_samples(self) -> list[RouterSample]:
        with self._lock:
            return list(self._builder.router)

    def requests(self) -> list[RequestSample]:
        """The requests answered so far."""
        answers = self._stream.answers() if self._stream is not None else []
        return [self._request(a) for a in answers]

    def _request(self, answer: StreamedAnswer) -> RequestSample:
        return RequestSample(
            sequence=answer.sequence,
            started=answer.received - answer.elapsed - self._began,
            elapsed=answer.elapsed,
            status=answer.status,
            local_port=answer.local_port,
            error=answer.error,
        )

    @property
    def sample_errors(self) -> list[str]:
        return list(self._sample_errors)

    def snapshot(self) -> Timeline:
        """The timeline so far, the probe still running."""
        requests = self.requests()
        with self._lock:
            builder = TimelineBuilder(
                self._builder.title, requests, list(self._builder.router), list(self._builder.marks)
            )
        return builder.build(self.now())

    def stop(self) -> Timeline:
        self._stopped.set()
        answers = self._stream.stop() if self._stream is not None else []
        self._sampler.join(timeout=30)
        duration = self.now()
        with self._lock:
            self._builder.requests = [self._request(a) for a in answers]
            return self._builder.build(duration)
