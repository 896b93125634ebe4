"""A pytest plugin that breaks the lab on purpose, loaded into a child suite run with `-p`.

`BGPCONFORM_TEST_FAULT` picks the fault. Each one breaks the system under test, not the harness's
judgement: the steps still run and assert as usual, and the tests check that the right scenario fails
with a message a person can act on.
  router-unconfigured     the router accepts the harness's peer configuration and never applies it
  operator-not-restarted  deleting the operator pod has no effect, so the old operator keeps running
  nginx-stopped           the nginx pod is gone just before the outside client sends its requests
  lab-cannot-start        the lab fails while it builds itself (infrastructure, not the product)
(A pool that cannot allocate needs no plugin: on Cilium 1.13 a /32 pool has no address, FACTS.md.)
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from bgpconform.cilium.operations import CiliumOperations
from bgpconform.errors import LabError
from bgpconform.kubeapi.client import Resources
from bgpconform.lab.cluster.cluster import LabCluster
from bgpconform.routers.frr import FrrRouter
from bgpconform.routers.port import BgpPeer
from bgpconform.waiting import wait_for
from bgpconform.walkthrough.machine import StageMachine

FAULT_VARIABLE = "BGPCONFORM_TEST_FAULT"
FAULTS = ("router-unconfigured", "operator-not-restarted", "nginx-stopped", "lab-cannot-start")
LAB_FAILURE = "the lab's switch namespace could not be created (planted fault)"


def _fault() -> str:
    fault = os.environ.get(FAULT_VARIABLE, "")
    if fault not in FAULTS:
        raise pytest.UsageError(f"{FAULT_VARIABLE}={fault!r}: pick one of {', '.join(FAULTS)}")
    return fault


def _ignore_peers(self: FrrRouter, peers: list[BgpPeer]) -> None:
    """A router that takes the configuration without error and never applies it."""


def _operator_survives(self: CiliumOperations) -> list[str]:
    """The pod deletion is lost; the running operator keeps the configuration it started with."""
    return []


def _lab_fails(self: LabCluster) -> LabCluster:
    raise LabError(LAB_FAILURE)


def pytest_configure(config: pytest.Config) -> None:
    fault = _fault()
    patch = pytest.MonkeyPatch()
    config.add_cleanup(patch.undo)
    if fault == "router-unconfigured":
        patch.setattr(FrrRouter, "configure_peers", _ignore_peers)
    elif fault == "operator-not-restarted":
        patch.setattr(CiliumOperations, "restart_operator", _operator_survives)
    elif fault == "lab-cannot-start":
        patch.setattr(LabCluster, "start", _lab_fails)


def pytest_bdd_before_step(
    request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any, step_func: Any
) -> None:
    if _fault() != "nginx-stopped" or not step.name.startswith("the outside client"):
        return
    walkthrough: StageMachine = request.getfixturevalue("walkthrough")
    kube = walkthrough.target.kube
    workload = walkthrough.topology.workload
    kube.delete(Resources.PODS, workload.pod_name, workload.namespace)
    wait_for(
        lambda: kube.get_or_none(Resources.PODS, workload.pod_name, workload.namespace),
        lambda pod: pod is None,
        expected=f"pod {workload.namespace}/{workload.pod_name} deleted",
        timeout=walkthrough.topology.waits.pods_running,
    )
