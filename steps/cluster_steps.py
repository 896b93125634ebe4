"""Steps of the CNI stage: nodes, the cluster's own pods, installing Cilium."""

from __future__ import annotations

from pytest_bdd import given, then, when

from bgpconform import checks, k3s_addons, observe
from bgpconform.cilium.labels import AGENT_SELECTOR, OPERATOR_DEPLOYMENT, OPERATOR_SELECTOR
from bgpconform.evidence import Evidence
from bgpconform.expect import expect
from bgpconform.kubeapi.port import Resources
from bgpconform.stage import Stage
from bgpconform.waiting import wait_for, wait_until
from bgpconform.walkthrough.machine import StageMachine

CNI_NOT_INITIALIZED = "cni plugin not initialized"  # kubelet's NetworkReady message (FACTS.md, k3s)


def addon_pods(walkthrough: StageMachine) -> list[observe.PodView]:
    return k3s_addons.addon_pods(walkthrough.target.kube)


@given("a k3s cluster without a CNI")
def cluster_without_cni(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.bring_to(Stage.MINIMAL)


@given("a k3s cluster running Cilium")
def cluster_with_cilium(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.bring_to_at_least(Stage.CILIUM)


@then("every node is NotReady because the CNI plugin is not initialized")
def nodes_not_ready(walkthrough: StageMachine, evidence: Evidence) -> None:
    views = walkthrough.wait_nodes_registered()
    evidence.table("kubectl get nodes", observe.node_table(walkthrough.target.kube))
    wrong = [
        f"{v.name}: ready={v.ready} reason={v.reason!r} message={v.message!r}"
        for v in views
        if v.ready or CNI_NOT_INITIALIZED not in v.message
    ]
    expect(not wrong, f"every node NotReady with the message {CNI_NOT_INITIALIZED!r}", "\n".join(wrong))


@then("the cluster DNS and storage pods are Pending")
def addons_pending(walkthrough: StageMachine, evidence: Evidence) -> None:
    waited = wait_for(
        lambda: addon_pods(walkthrough),
        lambda views: {v.namespace for v in views} == set(k3s_addons.ADDON_SELECTORS),
        expected="a CoreDNS and a local-path-provisioner pod",
        timeout=walkthrough.topology.waits.pods_running,
        describe=observe.pod_table,
    )
    evidence.table("kubectl get pods -A", observe.pod_table(observe.pods(walkthrough.target.kube)))
    running = [f"{v.namespace}/{v.name}: {v.status}" for v in waited.value if v.status != "Pending"]
    expect(not running, "CoreDNS and local-path-provisioner Pending", ", ".join(running))


@when("Cilium is installed")
def install_cilium(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.start_cilium_install()


@then("a Cilium agent runs on every node and every replica of the Cilium operator is ready")
def cilium_runs(walkthrough: StageMachine, evidence: Evidence) -> None:
    """As many operator replicas as the install asked for (Helm's default is 2, cilium-cli sets 1 on a
    small cluster; FACTS.md), at least one, each ready."""
    kube = walkthrough.target.kube
    timeout = walkthrough.topology.waits.pods_running
    nodes = frozenset(node.name for node in walkthrough.topology.nodes)
    agents = wait_until(
        lambda: observe.pods(kube, "kube-system", AGENT_SELECTOR),
        checks.AgentOnEveryNode(nodes),
        timeout=timeout,
    ).value
    deployment = kube.get_or_none(Resources.DEPLOYMENTS, OPERATOR_DEPLOYMENT, "kube-system")
    replicas = (deployment or {}).get("spec", {}).get("replicas")
    evidence.json(f"deployment {OPERATOR_DEPLOYMENT} replicas", replicas)
    operators = wait_until(
        lambda: observe.pods(kube, "kube-system", OPERATOR_SELECTOR),
        checks.OperatorReplicasReady.of_deployment(deployment),
        timeout=timeout,
    ).value
    evidence.table("kubectl get pods -n kube-system", observe.pod_table([*agents, *operators]))


@then("every node is Ready")
def nodes_ready(walkthrough: StageMachine, evidence: Evidence) -> None:
    kube = walkthrough.target.kube
    wait_until(
        lambda: observe.nodes(kube), walkthrough.every_node_ready, timeout=walkthrough.waits.nodes_ready
    )
    walkthrough.since_install("install -> every node Ready")
    evidence.table("kubectl get nodes", observe.node_table(kube))


@then("the cluster DNS and storage pods are Running")
def addons_running(walkthrough: StageMachine, evidence: Evidence) -> None:
    running = checks.PodsRunningAndReady(
        "CoreDNS and local-path-provisioner", frozenset(k3s_addons.ADDON_SELECTORS)
    )
    views = wait_until(
        lambda: addon_pods(walkthrough), running, timeout=walkthrough.topology.waits.pods_running
    ).value
    walkthrough.since_install("install -> cluster DNS and storage pods Running")
    evidence.table("cluster DNS and storage pods", observe.pod_table(views))
