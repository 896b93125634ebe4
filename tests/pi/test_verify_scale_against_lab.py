"""The scale check in verify mode against a cluster it did not build (a lab started by `bgpconform lab
up`, reached as a rack is): it runs without `--allow-destructive`, its services come and go, and the
cluster and the router are left as they were: the cluster's own pool and service untouched, none of
the run's services, pools or LB IPs left at the router.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bgpconform.cli.lab_commands import LabState
from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.ownership import HARNESS_LABEL
from bgpconform.walkthrough.scale import SCALE_LABEL
from tests.pi.conftest import lab_at, pi_topology
from tests.suite.runner import ROOT, SuiteRun, node_id, run_suite

pytestmark = pytest.mark.lab

SERVICES = ROOT / "topologies" / "lab-services.yaml"
SCALE_SCENARIO = "Every LB IP of many services is announced by every peering node and answers from outside"


def cluster_objects(state: LabState) -> dict[str, Any]:
    api: Any = new_api_client(state.kubeconfig)
    kube = Kube(api)
    try:
        return {
            "services": sorted(
                (s["metadata"]["name"], (s["metadata"].get("labels") or {}).get(HARNESS_LABEL, ""))
                for s in kube.items(Resources.SERVICES, "default")
            ),
            "pools": sorted(p["metadata"]["name"] for p in kube.items(Resources.LB_IP_POOLS)),
            "scale services": kube.items(Resources.SERVICES, label_selector=f"{SCALE_LABEL}=true"),
        }
    finally:
        api.close()


@dataclass(frozen=True)
class VerifiedScale:
    run: SuiteRun
    before: dict[str, Any]
    after: dict[str, Any]
    directory: Path


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory) -> VerifiedScale:
    directory = tmp_path_factory.mktemp("pi-scale")
    with lab_at(SERVICES, "lb-ipam") as state:
        topology = pi_topology(SERVICES, state, directory)
        before = cluster_objects(state)
        run = run_suite(directory, node_id(SCALE_SCENARIO), topology=topology, options=("--target=pi",))
        after = cluster_objects(state)
    return VerifiedScale(run, before, after, directory)


def test_the_scale_check_passes_in_verify_mode_without_allow_destructive(verified: VerifiedScale) -> None:
    run = verified.run
    assert run.returncode == 0, run.summary()
    assert list(run.scenarios) == [SCALE_SCENARIO], run.summary()
    assert run.scenarios[SCALE_SCENARIO].passed, run.summary()
    assert "--allow-destructive" not in run.output


def test_the_cluster_is_left_as_it_was(verified: VerifiedScale) -> None:
    """The lab's own service and pool stay; the run's 40 services and its two scale pools are gone."""
    assert verified.after["scale services"] == []
    assert verified.after["services"] == verified.before["services"]
    assert verified.after["pools"] == verified.before["pools"]
    assert ("my-service", "true") in verified.before["services"]  # the lab's, made by `lab up`
