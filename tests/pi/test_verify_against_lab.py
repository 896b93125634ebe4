"""`pytest --target=pi` in verify mode against a lab started by `bgpconform lab up`, reached only as a
user's rack is: the kubeconfig and context, the RouterOS API on 127.0.0.1, the client's namespace.

The runs are real child pytest processes of the conformance suite; what they must leave behind is read
back through the same API afterwards: the CNI and the peering untouched, the run's own objects gone.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import librouteros
import pytest
import yaml

from bgpconform.cilium.labels import AGENT_SELECTOR, OPERATOR_SELECTOR
from bgpconform.cli.lab_commands import LabState
from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.ownership import HARNESS_LABEL, RUN_LABEL
from bgpconform.report.model import RunReport, Verdict
from tests.pi.conftest import LAB_LOGIN, lab_at, pi_topology
from tests.suite.runner import ROOT, SuiteRun, run_suite, scenario_titles, verify_scenario_titles

pytestmark = pytest.mark.lab

ROUTEROS_TOPOLOGY = ROOT / "topologies" / "lab-routeros.yaml"
VERIFY = ("--target=pi",)


def cluster_state(state: LabState) -> dict[str, Any]:
    """What verify mode must not change, plus the harness-labelled objects with the run that made them."""
    api: Any = new_api_client(state.kubeconfig)
    kube = Kube(api)
    try:
        config = kube.get(Resources.CONFIGMAPS, "cilium-config", "kube-system")
        owned: list[tuple[str, str, str]] = []
        for resource in (Resources.SERVICES, Resources.PODS, Resources.LB_IP_POOLS):
            for obj in kube.items(resource, label_selector=f"{HARNESS_LABEL}=true"):
                labels = obj["metadata"]["labels"]
                owned.append((resource.kind, obj["metadata"]["name"], labels.get(RUN_LABEL, "")))
        return {
            "agents": sorted(
                p["metadata"]["name"] for p in kube.items(Resources.PODS, label_selector=AGENT_SELECTOR)
            ),
            "operator": sorted(
                p["metadata"]["name"] for p in kube.items(Resources.PODS, label_selector=OPERATOR_SELECTOR)
            ),
            "cilium-config": config["data"],
            "policies": sorted(
                (p["metadata"]["name"], p["metadata"]["resourceVersion"])
                for p in kube.items(Resources.BGP_PEERING_POLICIES)
            ),
            "node labels": {
                n["metadata"]["name"]: n["metadata"].get("labels", {}) for n in kube.items(Resources.NODES)
            },
            "owned": sorted(owned),
        }
    finally:
        api.close()


def router_connections(state: LabState) -> list[dict[str, Any]]:
    host, port = str(state.details["routeros_api"]).rsplit(":", 1)
    api = librouteros.connect(host, "admin", "", port=int(port), timeout=10)
    try:
        return sorted(api.path("routing", "bgp", "connection"), key=lambda row: str(row.get("name")))
    finally:
        api.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class VerifyRuns:
    refused: SuiteRun
    first: SuiteRun
    second: SuiteRun
    before: dict[str, Any]
    after: dict[str, Any]
    connections_before: list[dict[str, Any]]
    connections_after: list[dict[str, Any]]
    directory: Path
    after_refusal: tuple[dict[str, Any], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> VerifyRuns:
    directory = tmp_path_factory.mktemp("pi-verify")
    with lab_at(ROUTEROS_TOPOLOGY, "lb-ipam") as state:
        topology = pi_topology(ROUTEROS_TOPOLOGY, state, directory)
        before, connections_before = cluster_state(state), router_connections(state)
        broken = yaml.safe_load(topology.read_text())
        broken["router"]["management"]["port"] = closed_port()
        broken["nodes"][3]["name"] = "k3s-worker-node-09"
        broken["client"]["namespace"] = "bgpc-no-such-client"
        broken_path = directory / "broken.yaml"
        broken_path.write_text(yaml.safe_dump(broken, sort_keys=False))
        refused = run_suite(directory / "refused", topology=broken_path, options=VERIFY, env=LAB_LOGIN)
        after_refusal = cluster_state(state), router_connections(state)
        first = run_suite(directory / "first", topology=topology, options=VERIFY, env=LAB_LOGIN)
        second = run_suite(directory / "second", topology=topology, options=VERIFY, env=LAB_LOGIN)
        after, connections_after = cluster_state(state), router_connections(state)
    return VerifyRuns(
        refused, first, second, before, after, connections_before, connections_after, directory, after_refusal
    )


def _report(directory: Path) -> RunReport:
    return RunReport.model_validate_json((directory / "reports" / "latest" / "report.json").read_text())


def test_verify_mode_passes_against_a_lab_started_by_lab_up(runs: VerifyRuns) -> None:
    done = runs.first
    assert done.returncode == 0, done.summary()
    assert set(done.scenarios) == set(verify_scenario_titles()), done.summary()
    assert all(result.passed for result in done.scenarios.values()), done.summary()
    # the destructive scenarios, and those the release does not promise (version rules)
    deselected = len(scenario_titles(None)) - len(verify_scenario_titles())
    assert f"{deselected} deselected" in done.output, done.output[-2000:]
    report = _report(runs.directory / "first")
    assert report.verdict is Verdict.CONFORMANT, report.verdict_reason
    assert report.run.versions["target"] == "pi (verify)"
    assert report.run.versions["kube-context"] == "k3s-rpi"
    assert report.run.versions["router"].startswith("RouterOS 7.8")


def test_a_second_run_right_after_passes_as_well(runs: VerifyRuns) -> None:
    """Nothing the first run left (objects, client sockets in TIME_WAIT) trips the next one."""
    assert runs.second.returncode == 0, runs.second.summary()
    assert all(result.passed for result in runs.second.scenarios.values()), runs.second.summary()


def test_verify_mode_leaves_the_cni_and_the_peering_as_they_were(runs: VerifyRuns) -> None:
    for key in ("agents", "operator", "cilium-config", "policies", "node labels"):
        assert runs.after[key] == runs.before[key], key
    assert runs.connections_after == runs.connections_before


def test_the_runs_remove_their_own_objects_and_keep_the_clusters(runs: VerifyRuns) -> None:
    """The lab's pool, pod and service (made by `lab up`) stay; nothing any pytest run made is left."""
    assert runs.after["owned"] == runs.before["owned"]
    assert {name for kind, name, _ in runs.before["owned"]} >= {"lb-pool", "simple-pod", "my-service"}
    first_run_id = _report(runs.directory / "first").run.run_id
    assert all(run != first_run_id for _, _, run in runs.after["owned"])


def test_the_evidence_comes_from_the_clusters_own_interfaces(runs: VerifyRuns) -> None:
    raw = (runs.directory / "first" / "reports" / "latest" / "raw").resolve()
    kinds = {
        document.get("kind")
        for document in yaml.safe_load_all((raw / "api-objects.yaml").read_text())
        if document
    }
    assert {"Node", "Pod", "CiliumLoadBalancerIPPool", "CiliumBGPPeeringPolicy", "CiliumNode"} <= kinds
    report = _report(runs.directory / "first")
    titles = {item.title for scenario in report.scenarios for item in scenario.evidence}
    assert "router: /routing/bgp/session/print" in titles
    assert any(title.startswith("cilium bgp peers") for title in titles), sorted(titles)


def test_preflight_names_every_problem_and_changes_nothing(runs: VerifyRuns) -> None:
    output = runs.refused.output
    assert runs.refused.returncode == 4, output[-3000:]
    assert "preflight failed, nothing was changed" in output
    assert "FAIL nodes: k3s-worker-node-09 not in the cluster" in output
    assert "FAIL router login:" in output
    assert "/ip/service/enable api" in output  # the refused port's fix
    assert "FAIL outside client: namespace bgpc-no-such-client cannot reach" in output
    assert "ok   Kubernetes API" not in output  # only failures are listed, one line each
    assert runs.refused.scenarios == {}  # the session stopped before any scenario ran
    assert runs.after_refusal == (runs.before, runs.connections_before)
