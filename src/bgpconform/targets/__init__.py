"""Targets: one class per kind of system under test, behind the ports the steps call.

A step never asks which target runs; it calls `target.kube`, `target.cilium`, `target.installer`,
`target.router` and `target.client`. The registry names each target's class by import path and imports
it only when a run chooses it (as pytest-testinfra does its backends): the plugin is active in every
pytest session of a user who installed the package, and a session that runs no conformance suite must
not load the lab's emulator or a Docker client. A new target is one entry here and one module.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Protocol, cast

from bgpconform.errors import ConfigError
from bgpconform.mode import Mode

if TYPE_CHECKING:
    from bgpconform.targets.options import TargetOptions
    from bgpconform.targets.port import Target
    from bgpconform.topology import Topology


@dataclass(frozen=True)
class TargetEntry:
    """What the command line needs to know of a target before it imports it.

    `modes`: the modes it accepts, the default first (a cluster the run builds is always installed).
    `user_cluster`: the run reaches a cluster it did not build, so its options are checked before
    anything is collected (the target's own `cluster_outlives_run` says the same once it is loaded).
    `plans`: its class has `render_plan`, which `--dry-run` prints.
    `takes_defects`: it can be started with `--lab-defect` (the emulation has somewhere to put them).
    """

    import_path: str
    modes: tuple[Mode, ...]
    user_cluster: bool = False
    plans: bool = False
    takes_defects: bool = False


TARGETS: dict[str, TargetEntry] = {
    "lab": TargetEntry("bgpconform.targets.lab:LabTarget", (Mode.INSTALL,), takes_defects=True),
    "k3d": TargetEntry("bgpconform.targets.k3d.target:K3dTarget", (Mode.INSTALL,), plans=True),
    "pi": TargetEntry("bgpconform.targets.pi:ClusterTarget", (Mode.VERIFY, Mode.INSTALL), user_cluster=True),
}


class TargetClass(Protocol):
    """A target's class, as the registry uses it: it builds the target from the run's options."""

    name: str

    def from_options(self, topology: Topology, options: TargetOptions) -> Target: ...


class PlanningTargetClass(TargetClass, Protocol):
    """A target the run builds from a plan it can print without carrying it out."""

    def render_plan(self, topology: Topology, options: TargetOptions) -> str: ...


def target_entry(name: str) -> TargetEntry:
    if name not in TARGETS:
        raise ConfigError(f"--target {name!r}: unknown target; choose one of: {', '.join(TARGETS)}")
    return TARGETS[name]


def target_class(name: str) -> TargetClass:
    """Import the target's module now, and only it."""
    module_name, _, class_name = target_entry(name).import_path.partition(":")
    return cast("TargetClass", getattr(import_module(module_name), class_name))


def new_target(name: str, topology: Topology, options: TargetOptions) -> Target:
    return target_class(name).from_options(topology, options)


def planning_class(name: str) -> PlanningTargetClass | None:
    """The target's class if it can print its plan (`TargetEntry.plans`), else None, importing nothing."""
    if not target_entry(name).plans:
        return None
    return cast("PlanningTargetClass", target_class(name))
