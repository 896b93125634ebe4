"""The registry builds every target it names, through the one method it calls."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import pytest

from bgpconform.errors import ConfigError
from bgpconform.mode import Mode
from bgpconform.targets import (
    TARGETS,
    PlanningTargetClass,
    TargetClass,
    new_target,
    planning_class,
    target_class,
    target_entry,
)
from bgpconform.targets.k3d.target import K3dTarget
from bgpconform.targets.lab import LabTarget
from bgpconform.targets.options import TargetOptions
from bgpconform.targets.pi import ClusterTarget
from bgpconform.topology import load_topology

REPO = Path(__file__).resolve().parents[1]

# What mypy checks here: each registered class has what the registry calls on it.
_LAB: TargetClass = LabTarget
_PI: TargetClass = ClusterTarget
_K3D: PlanningTargetClass = K3dTarget


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_entry_names_a_class_of_that_target(name: str) -> None:
    module_name, _, class_name = TARGETS[name].import_path.partition(":")
    found = getattr(import_module(module_name), class_name)
    assert target_class(name) is found
    assert found.name == name


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_target_built_from_options_is_not_started_and_states_who_owns_its_cluster(name: str) -> None:
    topology = load_topology(REPO / "topologies" / "lab-routeros.yaml")
    built = new_target(name, topology, TargetOptions(mode=target_entry(name).modes[0]))
    assert built.name == name
    assert not built.started
    assert built.cluster_outlives_run is target_entry(name).user_cluster


def test_only_a_target_that_plans_is_planning() -> None:
    assert planning_class("lab") is None
    assert planning_class("pi") is None
    assert planning_class("k3d") is K3dTarget


def test_a_user_cluster_defaults_to_verify_and_a_built_one_always_installs() -> None:
    assert TARGETS["pi"].modes[0] is Mode.VERIFY
    assert {entry.modes for name, entry in TARGETS.items() if name != "pi"} == {(Mode.INSTALL,)}
    topology = load_topology(REPO / "topologies" / "lab.yaml")
    assert ClusterTarget.from_options(topology, TargetOptions()).mode is Mode.VERIFY


def test_an_unknown_target_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"--target 'kind': unknown target; choose one of: lab, k3d, pi"):
        target_entry("kind")
