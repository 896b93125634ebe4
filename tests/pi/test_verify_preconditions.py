"""Verify mode against a cluster short of the stage a scenario needs: Cilium runs but BGP is off (a
lab brought to `cilium`). The read-only CNI scenario passes, the BGP ones fail saying which stage they
expected and what they saw, and nothing is changed to make them pass: BGP stays off, no agent restarts."""

from __future__ import annotations

from typing import Any

import pytest

from bgpconform.cilium.labels import AGENT_SELECTOR
from bgpconform.cli.lab_commands import LabState
from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from tests.pi.conftest import lab_at, pi_topology
from tests.suite.runner import ROOT, SuiteRun, run_suite

pytestmark = pytest.mark.lab

FRR_TOPOLOGY = ROOT / "topologies" / "lab.yaml"
CNI_SCENARIO = "Cilium runs on every node and the cluster's own pods run"
BGP_SCENARIO = "The configuration enables BGP and the BGP resources are served"


def cni_state(state: LabState) -> dict[str, Any]:
    api: Any = new_api_client(state.kubeconfig)
    kube = Kube(api)
    try:
        config = kube.get(Resources.CONFIGMAPS, "cilium-config", "kube-system")["data"]
        agents = kube.items(Resources.PODS, "kube-system", label_selector=AGENT_SELECTOR)
        return {"config": config, "agents": sorted(p["metadata"]["name"] for p in agents)}
    finally:
        api.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SuiteRun, dict[str, Any], dict[str, Any]]:
    directory = tmp_path_factory.mktemp("pi-short")
    with lab_at(FRR_TOPOLOGY, "cilium") as state:
        before = cni_state(state)
        # Short waits: the stage is not coming, and a failing check must say so quickly.
        topology = pi_topology(
            FRR_TOPOLOGY, state, directory, waits={"crd_registered": 2.0, "sessions_established": 3.0}
        )
        done = run_suite(directory, topology=topology, options=("--target=pi",))
        after = cni_state(state)
    return done, before, after


def test_the_read_only_cni_scenario_passes(run: tuple[SuiteRun, dict[str, Any], dict[str, Any]]) -> None:
    done, _, _ = run
    assert done.scenarios[CNI_SCENARIO].passed, done.summary()


def test_a_scenario_beyond_the_clusters_stage_fails_naming_it(
    run: tuple[SuiteRun, dict[str, Any], dict[str, Any]],
) -> None:
    done, _, _ = run
    assert done.returncode == 1, done.summary()
    failed = done.scenarios[BGP_SCENARIO].failed_step
    assert failed is not None, done.summary()
    assert "verify mode expects the BGP control plane enabled" in failed.error, failed.error
    assert "enable-bgp-control-plane='false'" in failed.error, failed.error
    assert all(not result.passed for title, result in done.scenarios.items() if title != CNI_SCENARIO)


def test_nothing_was_changed_to_get_there(run: tuple[SuiteRun, dict[str, Any], dict[str, Any]]) -> None:
    _, before, after = run
    assert before["config"]["enable-bgp-control-plane"] == "false"
    assert after == before
