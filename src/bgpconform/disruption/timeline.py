"""One probe run on one clock: every request, every router sample, the fault's moments, and the
disruption figures they add up to. Times are seconds since the probe started."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from pydantic import BaseModel, ConfigDict


class RequestSample(BaseModel):
    """One request of the stream: when it started, how long it took, what came back."""

    model_config = ConfigDict(frozen=True)

    sequence: int
    started: float
    elapsed: float
    status: int | None
    local_port: int | None
    error: str = ""
    entry_node: str | None = None  # where it entered the cluster, from the backend's access log

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def ended(self) -> float:
        return self.started + self.elapsed


class RouterSample(BaseModel):
    """The router's view at one moment: each session's state and the LB route's next hops."""

    model_config = ConfigDict(frozen=True)

    at: float
    sessions: dict[str, str]  # peer address -> state name (`SessionState.value`)
    paths: tuple[str, ...]  # next hops of the LB prefix's paths in the router's BGP table
    nexthops: tuple[str, ...]  # next hops of the LB route the router forwards with


class Mark(BaseModel):
    """A moment the scenario did something (the fault, its undoing)."""

    model_config = ConfigDict(frozen=True)

    at: float
    label: str


class Figures(BaseModel):
    """What a team compares across runs: how much traffic a fault cost and how the router saw it."""

    model_config = ConfigDict(frozen=True)

    requests: int
    failed: int
    longest_gap: float  # seconds without a successful answer
    session_flaps: int  # sessions leaving Established
    withdrawals: int  # times the LB route lost next hops
    fewest_nexthops: int
    requests_per_second: float


class Timeline(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    duration: float
    requests: tuple[RequestSample, ...]
    router: tuple[RouterSample, ...]
    marks: tuple[Mark, ...]

    def figures(self, since: float = 0.0) -> Figures:
        """The figures from `since` on (a fault's mark), over the whole run by default."""
        return figures(self, since)

    def mark(self, label: str) -> Mark | None:
        return next((m for m in self.marks if m.label == label), None)

    def requests_after(self, moment: float) -> list[RequestSample]:
        return [r for r in self.requests if r.started >= moment]


def longest_gap(requests: Sequence[RequestSample], start: float, end: float) -> float:
    """The longest stretch between `start` and `end` in which no request got a successful answer: a
    success ends a stretch when it returns, and the next starts there."""
    successes = sorted(r.ended for r in requests if r.ok and start <= r.ended <= end)
    edges = [start, *successes, end]
    return max((b - a for a, b in pairwise(edges)), default=end - start)


def session_flaps(samples: Sequence[RouterSample]) -> int:
    """How many times a session went from Established to anything else (or vanished)."""
    flaps = 0
    for before, after in pairwise(samples):
        for peer, state in before.sessions.items():
            if state == "established" and after.sessions.get(peer) != "established":
                flaps += 1
    return flaps


def withdrawals(samples: Sequence[RouterSample]) -> int:
    """How many samples showed the LB route with fewer next hops than the one before."""
    return sum(1 for before, after in pairwise(samples) if len(after.nexthops) < len(before.nexthops))


def figures(timeline: Timeline, since: float = 0.0) -> Figures:
    requests = [r for r in timeline.requests if r.started >= since]
    router = [s for s in timeline.router if s.at >= since]
    span = max(timeline.duration - since, 1e-9)
    return Figures(
        requests=len(requests),
        failed=sum(1 for r in requests if not r.ok),
        longest_gap=round(longest_gap(requests, since, timeline.duration), 3),
        session_flaps=session_flaps(router),
        withdrawals=withdrawals(router),
        fewest_nexthops=min((len(s.nexthops) for s in router), default=0),
        requests_per_second=round(len(requests) / span, 1),
    )


@dataclass
class TimelineBuilder:
    """Collects samples from the probe's threads; `build` freezes them in time order."""

    title: str
    requests: list[RequestSample] = field(default_factory=list)
    router: list[RouterSample] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)

    def build(self, duration: float) -> Timeline:
        return Timeline(
            title=self.title,
            duration=duration,
            requests=tuple(sorted(self.requests, key=lambda r: r.started)),
            router=tuple(sorted(self.router, key=lambda s: s.at)),
            marks=tuple(sorted(self.marks, key=lambda m: m.at)),
        )
