"""What the command line tells a target, in one value, so the registry builds any target the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bgpconform.mode import Mode


@dataclass(frozen=True)
class TargetOptions:
    """Each field is one command-line option; a target reads those that apply to it."""

    mode: Mode | None = None  # None: the target's default (`TargetEntry.modes`)
    purpose: str = "pytest"  # names the lab's run directory and processes
    kubeconfig: Path | None = None
    context: str | None = None
    installer: str = "cilium"
    allow_destructive: bool = False
    routeros_version: str | None = None
    cilium_version: str | None = None
    chr_image: str | None = None
    lab_defects: tuple[str, ...] = ()  # lab: `bgpconform.lab.defects` to start the lab with
    lab_shortcuts: tuple[str, ...] = ()  # lab: `bgpconform.lab.shortcuts` in force (speed over fidelity)
    lab_seed: int | None = None  # lab: the seed of its random choices (`bgpconform.lab.chance`)
