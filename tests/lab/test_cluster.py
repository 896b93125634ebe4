"""The whole lab target through the official client: k3s without CNI, Cilium install, BGP, LB IPAM, NAT.

Stages are module fixtures that build on each other, so any test can run alone and pulls in exactly the
stages it needs; in file order they walk the walkthrough once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
from kubernetes import client

from bgpconform.bgp_states import SessionState
from bgpconform.cilium.install import CiliumValues
from bgpconform.cilium.operations import CiliumOperations
from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.lab.cilium.install import LabCiliumInstaller
from bgpconform.lab.cluster.cluster import LabCluster
from bgpconform.lab.runs import list_namespaces
from bgpconform.topology import Topology
from bgpconform.waiting import wait_for
from bgpconform.walkthrough import manifests
from bgpconform.walkthrough.newer import create_newer_than

MISSING_CRD_LOG = (
    'level=error msg=k8sError error="github.com/cilium/cilium/pkg/k8s/resource/resource.go:183: '
    "Failed to watch *v2alpha1.CiliumBGPPeeringPolicy: failed to list *v2alpha1.CiliumBGPPeeringPolicy: "
    'the server could not find the requested resource (get ciliumbgppeeringpolicies.cilium.io)" subsys=k8s'
)
CREATING_CRD_LOG = (
    'level=info msg="Creating CRD (CustomResourceDefinition)..." '
    "name=CiliumBGPPeeringPolicy/v2alpha1 subsys=k8s"
)
NOT_READY_MESSAGE = "cni plugin not initialized"
SERVICE_NAMESPACE = "default"


# -- helpers ---------------------------------------------------------------------------------------
def ready_condition(node: Any) -> Any:
    return next(c for c in node.status.conditions or [] if c.type == "Ready")


def pod_status_text(pod: Any) -> str:
    """What `kubectl get pods` prints in STATUS for the cases the walkthrough shows."""
    inits = pod.status.init_container_statuses or []
    total = len(pod.spec.init_containers or [])
    done = sum(1 for s in inits if s.state and s.state.terminated and s.state.terminated.exit_code == 0)
    if total and done < total:
        return f"Init:{done}/{total}"
    for status in pod.status.container_statuses or []:
        if status.state and status.state.waiting and status.state.waiting.reason:
            return str(status.state.waiting.reason)
    return str(pod.status.phase)


def ready_count(pod: Any) -> str:
    statuses = pod.status.container_statuses or []
    return f"{sum(1 for s in statuses if s.ready)}/{len(pod.spec.containers)}"


def pod_table(core: Any) -> list[tuple[str, str, str]]:
    return sorted(
        (f"{p.metadata.namespace}/{p.metadata.name}", ready_count(p), pod_status_text(p))
        for p in core.list_pod_for_all_namespaces().items
    )


def agent_pods(core: Any) -> list[Any]:
    return list(core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items)


def pod_log(core: Any, pod: Any, container: str) -> str:
    return str(core.read_namespaced_pod_log(pod.metadata.name, pod.metadata.namespace, container=container))


def served_resources(cluster: LabCluster, group_version: str) -> list[str]:
    return [str(r["name"]) for r in cluster.new_kube().api_resources(group_version)]


# -- stages ----------------------------------------------------------------------------------------
@dataclass
class Observed:
    """What a stage saw on its way, for tests that assert on the path rather than the end state."""

    statuses: set[tuple[str, str]] = field(default_factory=set)
    notes: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def cluster(lab_topology: Topology) -> Iterator[LabCluster]:
    with LabCluster(lab_topology, purpose="tests", init_step=0.05) as running:
        yield running


@pytest.fixture(scope="module")
def api_client(cluster: LabCluster) -> client.ApiClient:
    return cluster.new_kube().api_client


@pytest.fixture(scope="module")
def core(api_client: client.ApiClient) -> Any:
    # The typed client's models mark every field Optional; tests read them as the API serves them.
    core: Any = client.CoreV1Api(api_client)
    return core


@pytest.fixture(scope="module")
def cilium(cluster: LabCluster) -> CiliumOperations:
    return CiliumOperations(cluster.new_kube())


@pytest.fixture(scope="module")
def installed(cluster: LabCluster, core: Any) -> Observed:
    """`cilium install`; records every pod status seen until all nodes are Ready and all pods run."""
    observed = Observed()
    stop = threading.Event()

    def watch_statuses() -> None:
        while not stop.is_set():
            for name, _, status in pod_table(core):
                observed.statuses.add((name, status))
            stop.wait(0.02)

    watcher = threading.Thread(target=watch_statuses, daemon=True)
    watcher.start()
    try:
        LabCiliumInstaller(cluster.new_kube()).install(CiliumValues.for_topology(cluster.topology))
        wait_for(
            lambda: pod_table(core),
            lambda table: (
                len(table) >= len(cluster.topology.nodes) + 3
                and all(ready == "1/1" and status == "Running" for _, ready, status in table)
            ),
            expected="every pod 1/1 Running after cilium install",
            timeout=60,
        )
    finally:
        stop.set()
        watcher.join()
    return observed


@pytest.fixture(scope="module")
def bgp_enabled(installed: Observed, cilium: CiliumOperations, core: Any) -> Observed:
    """`cilium config set enable-bgp-control-plane true`: the agents restart and wait for the CRD."""
    before = {p.metadata.name for p in agent_pods(core)}
    observed = Observed()
    observed.notes["deleted"] = cilium.config_set("enable-bgp-control-plane", "true")
    observed.notes["operator_before"] = [p["metadata"]["name"] for p in cilium.operator_pods()]
    waited = wait_for(
        lambda: agent_pods(core),
        lambda pods: (
            len(pods) == len(before)
            and not {p.metadata.name for p in pods} & before
            and all(MISSING_CRD_LOG in pod_log(core, p, "cilium-agent") for p in pods)
        ),
        expected="new agent pods logging the missing-CRD error",
        timeout=60,
        describe=lambda pods: [(p.metadata.name, ready_count(p), pod_status_text(p)) for p in pods],
    )
    observed.notes["agents"] = waited.value
    return observed


@pytest.fixture(scope="module")
def operator_restarted(bgp_enabled: Observed, cilium: CiliumOperations, core: Any) -> Observed:
    observed = Observed()
    observed.notes["deleted"] = cilium.restart_operator()
    wait_for(
        lambda: [(p.metadata.name, ready_count(p)) for p in agent_pods(core)],
        lambda pods: bool(pods) and all(ready == "1/1" for _, ready in pods),
        expected="every agent 1/1 once the operator registered the policy CRD",
        timeout=60,
    )
    return observed


@pytest.fixture(scope="module")
def peering(operator_restarted: Observed, cluster: LabCluster, cilium: CiliumOperations) -> Observed:
    """The walkthrough's policy and node labels; sessions seen `active`, then the router configured."""
    topology = cluster.topology
    kube = cluster.new_kube()
    policy = manifests.peering_policy(topology)
    kube.create(Resources.BGP_PEERING_POLICIES, policy)
    for node in topology.bgp_nodes:
        kube.patch(Resources.NODES, node.name, {"metadata": {"labels": dict(topology.bgp.node_selector)}})
    peers = {node.name for node in topology.bgp_nodes}
    observed = Observed()
    active = wait_for(
        cilium.bgp_peers,
        lambda per_node: (
            set(per_node) >= peers
            and all(per_node[n] and per_node[n][0].session_state is SessionState.ACTIVE for n in peers)
        ),
        expected="every labelled node's session `active` while the router does not know the nodes",
        timeout=60,
    )
    observed.notes["active"] = active.value
    cluster.lab.router.configure_peers(cluster.lab.topology_peers())
    established = wait_for(
        cilium.bgp_peers,
        lambda per_node: all(
            per_node.get(n) and per_node[n][0].session_state is SessionState.ESTABLISHED for n in peers
        ),
        expected="every labelled node's session established",
        timeout=60,
    )
    observed.notes["established"] = established.value
    return observed


@dataclass
class Exposed:
    name: str
    ip: IPv4Address
    port: int


def expose_nginx(cluster: LabCluster, name: str, replicas: int) -> Exposed:
    """An nginx Deployment behind a LoadBalancer service; returns once the service has its IP."""
    workload = cluster.topology.workload
    kube = cluster.new_kube()
    labels = {"app": name}
    kube.create(
        Resources.DEPLOYMENTS,
        {
            "metadata": {"name": name, "namespace": SERVICE_NAMESPACE},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": workload.image,
                                "ports": [{"containerPort": workload.target_port}],
                            }
                        ]
                    },
                },
            },
        },
        SERVICE_NAMESPACE,
    )
    kube.create(
        Resources.SERVICES,
        {
            "metadata": {"name": name, "namespace": SERVICE_NAMESPACE, "labels": labels},
            "spec": {
                "type": "LoadBalancer",
                "selector": labels,
                "ports": [{"port": workload.port, "targetPort": workload.target_port, "protocol": "TCP"}],
            },
        },
        SERVICE_NAMESPACE,
    )
    waited = wait_for(
        lambda: kube.get(Resources.SERVICES, name, SERVICE_NAMESPACE).get("status", {}),
        lambda status: bool(status.get("loadBalancer", {}).get("ingress")),
        expected=f"service {name} to get an external IP",
        timeout=30,
    )
    return Exposed(name, IPv4Address(waited.value["loadBalancer"]["ingress"][0]["ip"]), workload.port)


@pytest.fixture(scope="module")
def pool(peering: Observed, cluster: LabCluster) -> dict[str, Any]:
    first = cluster.topology.lb_pools[0]
    body = {"metadata": {"name": first.name}, "spec": {"cidrs": [{"cidr": str(c)} for c in first.cidrs]}}
    created: dict[str, Any] = cluster.new_kube().create(Resources.LB_IP_POOLS, body)
    return created


@pytest.fixture(scope="module")
def service(pool: dict[str, Any], cluster: LabCluster) -> Exposed:
    """The policy announces services labelled like this one; see `peering`'s serviceSelector."""
    return expose_nginx(cluster, "nginx-lb", replicas=len(cluster.topology.workers))


def router_nexthops(cluster: LabCluster, prefix: IPv4Network) -> set[IPv4Address]:
    return {hop for route in cluster.lab.router.bgp_routes(prefix) for hop in route.nexthops}


def wait_for_nexthops(cluster: LabCluster, prefix: IPv4Network, hops: set[IPv4Address]) -> None:
    wait_for(
        lambda: router_nexthops(cluster, prefix),
        lambda seen: seen == hops,
        expected=f"{prefix} at the router via {sorted(map(str, hops)) or 'nothing'}",
        timeout=20,
    )


def worker_addresses(cluster: LabCluster) -> set[IPv4Address]:
    return {node.address for node in cluster.topology.bgp_nodes}


# -- tests -----------------------------------------------------------------------------------------
def test_nodes_register_not_ready_and_addons_stay_pending(cluster: LabCluster, core: Any) -> None:
    nodes = wait_for(
        lambda: core.list_node().items,
        lambda items: len(items) == len(cluster.topology.nodes),
        expected="every topology node registered",
        timeout=10,
    ).value
    for node in nodes:
        condition = ready_condition(node)
        assert condition.status == "False"
        assert NOT_READY_MESSAGE in condition.message
        assert node.status.node_info.kubelet_version == cluster.topology.cluster.k3s_version
    pending = wait_for(
        lambda: pod_table(core),
        lambda table: {name.split("/")[0] for name, _, _ in table} >= {"kube-system", "local-path-storage"},
        expected="coredns and local-path-provisioner pods",
        timeout=10,
    ).value
    assert {(ready, status) for _, ready, status in pending} == {("0/1", "Pending")}
    names = [name for name, _, _ in pending]
    assert any(name.startswith("kube-system/coredns-") for name in names)
    assert any(name.startswith("local-path-storage/local-path-provisioner-") for name in names)
    coredns = core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items[0]
    scheduled = next(c for c in coredns.status.conditions if c.type == "PodScheduled")
    assert (scheduled.status, scheduled.reason) == ("False", "Unschedulable")


def test_cilium_install_starts_agents_through_init_and_makes_nodes_ready(
    installed: Observed, cluster: LabCluster, core: Any
) -> None:
    init_states = {status for name, status in installed.statuses if name.startswith("kube-system/cilium-")}
    assert any(s.startswith("Init:") and s not in ("Init:0/6", "Init:6/6") for s in init_states), init_states
    for node in core.list_node().items:
        assert ready_condition(node).status == "True", node.metadata.name
    agents = agent_pods(core)
    assert len(agents) == len(cluster.topology.nodes)
    assert {p.spec.node_name for p in agents} == {n.name for n in cluster.topology.nodes}
    operators = core.list_namespaced_pod("kube-system", label_selector="io.cilium/app=operator").items
    assert len(operators) == 1
    assert operators[0].metadata.name.startswith("cilium-operator-")
    for pod in core.list_namespaced_pod("kube-system", label_selector="k8s-app=kube-dns").items:
        assert pod.status.phase == "Running"


def test_enabling_bgp_restarts_agents_only_and_they_wait_for_the_policy_crd(
    bgp_enabled: Observed, cilium: CiliumOperations, cluster: LabCluster, core: Any
) -> None:
    assert "ciliumbgppeeringpolicies" not in served_resources(cluster, "cilium.io/v2alpha1")
    assert "ciliumloadbalancerippools" in served_resources(cluster, "cilium.io/v2alpha1")
    assert [p["metadata"]["name"] for p in cilium.operator_pods()] == bgp_enabled.notes["operator_before"]
    for pod in agent_pods(core):
        assert ready_count(pod) == "0/1"
        assert pod_log(core, pod, "cilium-agent").count(MISSING_CRD_LOG) >= 1


def test_operator_restart_registers_the_policy_crd_and_agents_become_ready(
    operator_restarted: Observed,
    cilium: CiliumOperations,
    cluster: LabCluster,
    core: Any,
) -> None:
    assert "ciliumbgppeeringpolicies" in served_resources(cluster, "cilium.io/v2alpha1")
    operator = core.list_namespaced_pod("kube-system", label_selector="io.cilium/app=operator").items[0]
    assert operator.metadata.name not in operator_restarted.notes["deleted"]
    assert CREATING_CRD_LOG in pod_log(core, operator, "cilium-operator")
    assert all(ready_count(p) == "1/1" for p in agent_pods(core))


def test_sessions_active_before_the_router_knows_nodes_then_established(
    peering: Observed, cluster: LabCluster
) -> None:
    topology = cluster.topology
    peering_nodes = {n.name for n in topology.bgp_nodes}
    assert set(peering.notes["active"]) >= peering_nodes
    established = peering.notes["established"]
    for name in peering_nodes:
        (peer,) = established[name]
        assert peer.peer_address == str(topology.router.address)
        assert (peer.local_asn, peer.peer_asn) == (topology.bgp.node_asn, topology.bgp.peer_asn)
        assert peer.uptime_ns is not None
    for control_plane in topology.control_planes:
        assert not established.get(control_plane.name)
    router_states = {s.peer: s.state for s in cluster.lab.router.sessions()}
    assert all(router_states.get(n.address) is SessionState.ESTABLISHED for n in topology.bgp_nodes)
    kube = cluster.new_kube()
    for node in topology.bgp_nodes:  # each node's pod CIDR as the operator's cluster-pool IPAM gave it
        (cidr,) = kube.get(Resources.CILIUM_NODES, node.name)["spec"]["ipam"]["podCIDRs"]
        assert IPv4Network(cidr).subnet_of(topology.cluster.cluster_pool)
        wait_for_nexthops(cluster, IPv4Network(cidr), {node.address})


def test_lb_ipam_allocates_inside_the_pool_and_marks_an_overlapping_pool(
    service: Exposed, pool: dict[str, Any], cluster: LabCluster
) -> None:
    network = cluster.topology.lb_pools[0].cidrs[0]
    assert service.ip in network
    assert service.ip not in (network.network_address, network.broadcast_address)
    kube = cluster.new_kube()
    overlap = IPv4Network(f"{network.network_address}/{network.prefixlen + 1}")
    # A later second than the first pool: within one the lab marks either pool, as Cilium does.
    create_newer_than(
        kube,
        lambda body: kube.create(Resources.LB_IP_POOLS, body),
        Resources.LB_IP_POOLS,
        {"metadata": {"name": "overlap"}, "spec": {"cidrs": [{"cidr": str(overlap)}]}},
        older=kube.get(Resources.LB_IP_POOLS, pool["metadata"]["name"]),
        delete_timeout=10,
    )

    def conflict(name: str) -> dict[str, Any]:
        obj = kube.get(Resources.LB_IP_POOLS, name)
        found = [c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "io.cilium/conflict"]
        return found[0] if found else {}

    marked = wait_for(
        lambda: conflict("overlap"),
        lambda c: c.get("status") == "True",
        expected="overlap marked",
        timeout=15,
    ).value
    assert marked["reason"] == "cidr_overlap"
    assert marked["message"] == (
        f"Pool conflicts since CIDR '{overlap}' overlaps CIDR '{network}' "
        f"from IP Pool '{pool['metadata']['name']}'"
    )
    assert conflict(pool["metadata"]["name"]).get("status") == "False"
    kube.delete(Resources.LB_IP_POOLS, "overlap")
    wait_for(
        lambda: kube.get_or_none(Resources.LB_IP_POOLS, "overlap"),
        lambda o: o is None,
        expected="gone",
        timeout=10,
    )
    still = kube.get(Resources.SERVICES, service.name, SERVICE_NAMESPACE)
    assert still["status"]["loadBalancer"]["ingress"][0]["ip"] == str(service.ip)


def test_lb_ip_reaches_the_router_from_every_worker_and_nginx_answers_the_client(
    service: Exposed, cluster: LabCluster
) -> None:
    prefix = IPv4Network(f"{service.ip}/32")
    wait_for(
        lambda: router_nexthops(cluster, prefix),
        lambda hops: hops == worker_addresses(cluster),
        expected=f"{prefix} at the router from every worker",
        timeout=20,
    )
    page = wait_for(
        lambda: cluster.lab.client_exec(
            ["curl", "-s", "--max-time", "3", f"http://{service.ip}:{service.port}/"], timeout=10
        ),
        lambda text: "Welcome to nginx!" in text,
        expected="the nginx page through the LB IP from the outside client",
        timeout=20,
        tolerate=(Exception,),
    )
    assert "<title>Welcome to nginx!</title>" in page.value


def test_deleting_a_service_withdraws_its_route(pool: dict[str, Any], cluster: LabCluster) -> None:
    extra = expose_nginx(cluster, "nginx-withdraw", replicas=1)
    prefix = IPv4Network(f"{extra.ip}/32")
    wait_for(
        lambda: router_nexthops(cluster, prefix),
        lambda hops: hops == worker_addresses(cluster),
        expected=f"{prefix} announced",
        timeout=20,
    )
    Kube.delete(cluster.new_kube(), Resources.SERVICES, extra.name, SERVICE_NAMESPACE)
    wait_for(
        lambda: router_nexthops(cluster, prefix),
        lambda hops: not hops,
        expected=f"{prefix} withdrawn from the router",
        timeout=20,
    )
    wait_for(
        lambda: cluster.lab.router.fib_routes(prefix),
        lambda routes: not routes,
        expected=f"{prefix} gone from the router's kernel table",
        timeout=10,
    )


def test_stopping_the_cluster_leaves_nothing(lab_topology: Topology) -> None:
    with LabCluster(lab_topology, purpose="tests") as running:
        prefix = running.lab.run.namespace("")
        assert any(ns.startswith(prefix) for ns in list_namespaces())
    assert not [ns for ns in list_namespaces() if ns.startswith(prefix)]
