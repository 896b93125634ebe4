"""A pytest plugin for the two faults that are not a product's defect, loaded into a child run with `-p`.

What Cilium, k3s or the router can get wrong is a lab defect (`--lab-defect`, bgpconform.lab.defects),
living in the emulated component. What is left here comes from outside the product:
  nginx-stopped     someone deletes the nginx pod just before the outside client sends its requests
                    (through the Kubernetes API, as a person would)
  lab-cannot-start  the lab fails while it builds itself: infrastructure, which a run must report as
                    not assessed, never as non-conformant
`BGPCONFORM_TEST_FAULT` picks one.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from bgpconform.errors import LabError
from bgpconform.kubeapi.client import Resources
from bgpconform.lab.cluster.cluster import LabCluster
from bgpconform.waiting import wait_for
from bgpconform.walkthrough.machine import StageMachine

FAULT_VARIABLE = "BGPCONFORM_TEST_FAULT"
FAULTS = ("nginx-stopped", "lab-cannot-start")
LAB_FAILURE = "the lab's switch namespace could not be created (planted fault)"


def _fault() -> str:
    fault = os.environ.get(FAULT_VARIABLE, "")
    if fault not in FAULTS:
        raise pytest.UsageError(f"{FAULT_VARIABLE}={fault!r}: pick one of {', '.join(FAULTS)}")
    return fault


def _lab_fails(self: LabCluster) -> LabCluster:
    raise LabError(LAB_FAILURE)


def pytest_configure(config: pytest.Config) -> None:
    fault = _fault()
    patch = pytest.MonkeyPatch()
    config.add_cleanup(patch.undo)
    if fault == "lab-cannot-start":
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
