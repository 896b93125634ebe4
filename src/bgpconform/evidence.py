"""What each step observed and how long each stage took to converge, kept for the report.

Steps record evidence in the shapes the walkthrough prints (tables, logs, HTTP answers); a failing step
also gets the target's state captured before anything is cleaned up.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["table", "text", "json", "timeline"]


@dataclass(frozen=True)
class Item:
    step: str
    title: str
    kind: Kind
    body: str
    at: float


@dataclass(frozen=True)
class Timing:
    """One convergence: from an action to the state it should lead to."""

    stage: str
    name: str
    seconds: float


@dataclass
class Evidence:
    """One scenario's record; `step` names the step now running (set by the plugin's hooks)."""

    step: str = "(setup)"
    items: list[Item] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    summaries: dict[int, str] = field(default_factory=dict)  # item index -> its terminal text

    def table(self, title: str, body: str) -> None:
        self.items.append(Item(self.step, title, "table", body, time.time()))

    def text(self, title: str, body: str) -> None:
        self.items.append(Item(self.step, title, "text", body, time.time()))

    def json(self, title: str, value: Any) -> None:
        self.items.append(
            Item(self.step, title, "json", json.dumps(value, indent=2, default=str), time.time())
        )

    def timeline(self, title: str, body: str, summary: str) -> None:
        """A probe's timeline (`bgpconform.disruption.timeline.Timeline` as JSON), drawn by the report;
        `summary` is what a terminal shows of it."""
        self.items.append(Item(self.step, title, "timeline", body, time.time()))
        self.summaries[len(self.items) - 1] = summary

    def timing(self, stage: str, name: str, seconds: float) -> None:
        self.timings.append(Timing(stage, name, seconds))

    def count(self, name: str, value: int) -> None:
        self.counts[name] = value

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": [asdict(i) for i in self.items],
            "timings": [asdict(t) for t in self.timings],
            "counts": dict(self.counts),
        }

    def render(self) -> str:
        """Plain text for the terminal and junit: every item under its step."""
        parts = []
        for index, item in enumerate(self.items):
            body = self.summaries.get(index, item.body)
            parts.append(f"--- [{item.step}] {item.title}\n{body}")
        for timing in self.timings:
            parts.append(f"--- timing [{timing.stage}] {timing.name}: {timing.seconds:.3f} s")
        return "\n".join(parts)
