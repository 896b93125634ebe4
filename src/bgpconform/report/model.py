"""The run record every report file is written from (`report.json` is this model, serialized).

Field names are stable: `metrics.json` and `bgpconform report compare` read them across versions of
the harness, so a field is added, never renamed; `SCHEMA_VERSION` changes when one has to be.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bgpconform.verdict import Outcome

SCHEMA_VERSION = 1


class Verdict(StrEnum):
    CONFORMANT = "conformant"
    NON_CONFORMANT = "non-conformant"
    NOT_ASSESSED = "not-assessed"


class _Model(BaseModel):
    # Ignore fields this version does not know: a newer harness adds fields, and an older
    # `report compare` must still read its report.json.
    model_config = ConfigDict(extra="ignore")


class StepResult(_Model):
    keyword: str  # Given / When / Then / And, as written in the feature
    name: str
    status: Literal["passed", "failed", "skipped"]
    duration: float  # seconds
    background: bool = False  # the step belongs to the feature's Background


class EvidenceItem(_Model):
    step: str
    title: str
    kind: Literal["table", "text", "json", "timeline"]  # timeline: a probe's `Timeline` as JSON
    body: str
    at: float  # Unix time the step recorded it


class Timing(_Model):
    """One convergence: from an action to the state it should lead to."""

    stage: str
    name: str
    seconds: float


class Failure(_Model):
    step: str  # the step that failed, with its keyword; "(setup)" when no step ran
    kind: str  # the exception's class name
    message: str
    expected: str | None = None  # parsed from "expected: ... observed: ..." messages
    observed: str | None = None


class ScenarioResult(_Model):
    feature: str
    name: str
    node_id: str
    outcome: Outcome
    duration: float
    steps: list[StepResult] = Field(default_factory=list)
    evidence: list[EvidenceItem] = Field(default_factory=list)
    timings: list[Timing] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    failure: Failure | None = None


class Provenance(_Model):
    """What was real and what emulated (`bgpconform.provenance`); absent when the target never said."""

    real: list[str]
    emulated: list[str] = Field(default_factory=list)
    shortcuts: list[str] = Field(default_factory=list)
    defects: list[str] = Field(default_factory=list)

    @property
    def all_real(self) -> bool:
        return not self.emulated and not self.shortcuts and not self.defects

    @property
    def emulated_names(self) -> list[str]:
        """`Cilium 1.13.4: agent, operator ...` -> `Cilium 1.13.4`: what a headline names."""
        return [part.split(":", 1)[0] for part in self.emulated]


class ShardRun(_Model):
    """One shard of a run split over labs side by side (`bgpconform suite --shards`)."""

    number: int
    command: str  # replays this shard alone
    returncode: int
    seconds: float
    scenarios: int  # how many it ran
    report: str | None  # its own report directory, relative to the merged one; None: it wrote none


class RunInfo(_Model):
    run_id: str
    target: str
    topology_path: str
    topology_sha256: str
    versions: dict[str, str]  # k3s, cilium, cilium-cli, router, as read from the system
    harness_version: str
    git_revision: str  # "unknown" outside a git checkout; "+dirty" when it has local changes
    started_at: datetime
    duration: float
    user: str
    host: str
    command: str
    provenance: Provenance | None = None
    # Scenarios whose promise depends on the Cilium version or BGP API: which applied, and why not.
    version_rules: list[str] = Field(default_factory=list)
    # Set when the run was split over labs side by side: each shard brought its own lab through the
    # stages its scenarios need.
    shards: list[ShardRun] = Field(default_factory=list)


class StageSummary(_Model):
    """A stage's convergence over the run: each timing name with every value seen (a stage may be
    walked more than once, e.g. once per scenario that needs it)."""

    stage: str
    timings: dict[str, list[float]]


class RunReport(_Model):
    schema_version: int = SCHEMA_VERSION
    run: RunInfo
    verdict: Verdict
    verdict_reason: str
    scenarios: list[ScenarioResult]
    stages: list[StageSummary]
    counts: dict[str, int]
    harness_error: str | None = None  # what stopped the harness before or outside any scenario
