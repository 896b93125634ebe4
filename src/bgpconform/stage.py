"""The walkthrough's stages by name, apart from the machine that moves between them, so a command line
can check a stage name without loading the Kubernetes client."""

from __future__ import annotations

from enum import IntEnum

from bgpconform.errors import ConfigError


class Stage(IntEnum):
    MINIMAL = 0
    CILIUM = 1
    BGP_ENABLED = 2
    BGP_READY = 3
    PEERING = 4
    LB_IPAM = 5

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


STAGES = {stage.label: stage for stage in Stage}


def parse_stage(name: str) -> Stage:
    if name not in STAGES:
        raise ConfigError(f"--stage {name!r}: unknown stage; choose one of: {', '.join(STAGES)}")
    return STAGES[name]
