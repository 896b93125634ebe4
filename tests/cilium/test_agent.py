"""The emulated Cilium 1.13 agent on the real lab wire, driven through the lab's API server.

No kubelet here: one `Agent` per node is run directly, as the kubelet would run its program. The module
follows the walkthrough's order, one stage per test (each test first brings the shared state to where
its stage starts, so a test also runs alone): BGP enabled while the policy CRD is missing (agents 0/1
and logging the walkthrough's error), the CRD registered (agents ready, CNI config written), the policy
and node labels (sessions `active`, then `established` once the router knows the nodes), the pod CIDR
and a LoadBalancer service announced, nginx reached from outside through the LB IP, the service
deleted (route withdrawn), and two policies selecting one node (its BGP cleared, the error logged).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from bgpconform.bgp_states import SessionState
from bgpconform.cilium.bgp_peers import parse_agent_json
from bgpconform.commands import run
from bgpconform.errors import HarnessError
from bgpconform.kubeapi.client import ApiException, Kube, KubeResource, Resources, new_api_client
from bgpconform.lab import shortcuts
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.cilium import crds
from bgpconform.lab.cilium.agent import BGP_CRD_MISSING, CNI_CONFIG_NAME, Agent, AgentProgram, agent_table
from bgpconform.lab.cilium.bgp_control import POLICY_SELECTION_FAILED
from bgpconform.lab.cluster.runtime import ContainerContext
from bgpconform.lab.datapath import ServiceDatapath
from bgpconform.lab.lab import Lab
from bgpconform.lab.runs import namespace_pids
from bgpconform.lab.workloads import STOCK_INDEX_HTML, NginxContainer
from bgpconform.topology import Node, load_topology
from bgpconform.waiting import wait_for

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
CRD_FIXTURE = REPO / "tests" / "apiserver" / "fixtures" / "ciliumbgppeeringpolicies.yaml"
ALL_SERVICES = {"matchExpressions": [{"key": "somekey", "operator": "NotIn", "values": ["never-used-value"]}]}
SECOND_POLICY = "02-conflicting-policy"
SLICE_LABEL = "kubernetes.io/service-name"


@dataclass
class AgentLog:
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def snapshot(self) -> list[str]:
        with self.lock:
            return list(self.lines)


@dataclass
class Cluster:
    lab: Lab
    kube: Kube
    agents: dict[str, Agent]
    logs: dict[str, AgentLog]
    kubeconfig: str

    @property
    def workers(self) -> list[Node]:
        return list(self.lab.topology.bgp_nodes)

    def peers_json(self, node: str) -> list[Any]:
        result = self.agents[node].exec(["cilium", "bgp", "peers", "-o", "json"], None)
        assert result.exit_code == 0, result.stderr
        loaded: list[Any] = json.loads(result.stdout)
        return loaded

    def states(self) -> dict[str, list[str]]:
        """Per worker, the session states its agent reports."""
        return {
            node.name: [
                str(p.session_state) for p in parse_agent_json(json.dumps(self.peers_json(node.name)))
            ]
            for node in self.workers
        }


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(load_topology(REPO / "topologies" / "lab.yaml"), purpose="tests") as running:
        yield running


def _crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CRD_FIXTURE.read_text())
    return loaded


SESSION_WAIT = 30.0  # with the shortcuts the router dials every second


def pod_cidr(lab: Lab, node: Node) -> IPv4Network:
    """The pod CIDR these tests' node IPAM gives a node: a /24 of 10.42.0.0/16 by topology order."""
    return IPv4Network(f"10.42.{[n.name for n in lab.topology.nodes].index(node.name)}.0/24")


@pytest.fixture(scope="module")
def cluster(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Agents on the lab's shortcuts (`short-bgp-timers`, `router-dials`): these tests are about what
    the agent does, not about 1.13's dialling (tests/lab/test_bgp.py and the faithful suite cover that)."""
    shortcuts.activate(["short-bgp-timers", "router-dials"])
    server = ApiServer(tmp_path_factory.mktemp("api"), bookmark_interval=0.5)
    server.start()
    api_client = new_api_client(str(server.kubeconfig_path))
    kube = Kube(api_client)
    topology = lab.topology
    kube.create(
        Resources.CONFIGMAPS,
        {
            "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": {
                "enable-bgp-control-plane": "true",
                "kube-proxy-replacement": "strict",
                "cluster-name": "default",
                "ipam": "kubernetes",  # no operator here: the agents take the Nodes' pod CIDRs
            },
        },
        "kube-system",
    )
    kube.create(Resources.CRDS, crds.CN.definition())  # what the operator registers at start
    for node in topology.nodes:
        labels = {"kubernetes.io/hostname": node.name, **node.labels}
        spec = {"podCIDR": str(pod_cidr(lab, node)), "podCIDRs": [str(pod_cidr(lab, node))]}
        kube.create(Resources.NODES, {"metadata": {"name": node.name, "labels": labels}, "spec": spec})
    agents: dict[str, Agent] = {}
    logs: dict[str, AgentLog] = {}
    clients = [api_client]
    for node in topology.nodes:
        logs[node.name] = AgentLog()
        clients.append(new_api_client(str(server.kubeconfig_path)))  # one client per agent, as per binary
        agents[node.name] = Agent(
            Kube(clients[-1]),
            node=node,
            topology=topology,
            network=lab.network,
            directory=lab.run.directory / "agents" / node.name,
            cni_config_dir=lab.run.directory / "nodes" / node.name / "etc" / "cni" / "net.d",
            log=logs[node.name],
            resync=2.0,
        )
    built = Cluster(lab, kube, agents, logs, str(server.kubeconfig_path))
    try:
        for agent in agents.values():
            agent.start()
        yield built
    finally:
        for agent in agents.values():
            agent.stop()
        leftovers = {name: namespace_pids(lab.network.node_ns[name]) for name in agents}
        for client in clients:
            client.close()  # type: ignore[no-untyped-call]
        server.stop()
        shortcuts.activate([])
        assert leftovers == {name: [] for name in agents}, "agent processes outlived their agents"


def _ensure_crd(cluster: Cluster) -> None:
    if cluster.kube.get_or_none(Resources.CRDS, "ciliumbgppeeringpolicies.cilium.io") is None:
        cluster.kube.create(Resources.CRDS, _crd())
    wait_for(
        lambda: {name: agent.ready() for name, agent in cluster.agents.items()},
        lambda ready: all(ready.values()),
        expected="every agent ready once the policy CRD is served",
        timeout=30,
    )


def _ensure_policy(cluster: Cluster) -> None:
    """The walkthrough's policy, with the worker nodes labelled `bgp-policy=a`."""
    topology = cluster.lab.topology
    _ensure_crd(cluster)
    if cluster.kube.get_or_none(Resources.BGP_PEERING_POLICIES, topology.bgp.policy_name) is None:
        policy = {
            "metadata": {"name": topology.bgp.policy_name},
            "spec": {
                "nodeSelector": {"matchLabels": dict(topology.bgp.node_selector)},
                "virtualRouters": [
                    {
                        "localASN": topology.bgp.node_asn,
                        "exportPodCIDR": topology.bgp.export_pod_cidr,
                        "neighbors": [
                            {"peerAddress": f"{topology.router.address}/32", "peerASN": topology.bgp.peer_asn}
                        ],
                        "serviceSelector": ALL_SERVICES,
                    }
                ],
            },
        }
        cluster.kube.create(Resources.BGP_PEERING_POLICIES, policy)
    for node in cluster.workers:
        cluster.kube.patch(
            Resources.NODES, node.name, {"metadata": {"labels": dict(topology.bgp.node_selector)}}
        )


def _ensure_established(cluster: Cluster) -> None:
    _ensure_policy(cluster)
    cluster.lab.router.configure_peers(cluster.lab.topology_peers())
    wait_for(
        cluster.states,
        lambda states: all(s == ["established"] for s in states.values()),
        expected="every worker's agent reports its session with the router established",
        timeout=SESSION_WAIT,
        tolerate=(AssertionError,),
    )


def test_agents_wait_for_the_policy_crd_then_become_ready(cluster: Cluster) -> None:
    if cluster.kube.get_or_none(Resources.CRDS, "ciliumbgppeeringpolicies.cilium.io") is None:
        wait_for(
            lambda: {name: log.snapshot().count(BGP_CRD_MISSING) for name, log in cluster.logs.items()},
            lambda counts: all(count >= 2 for count in counts.values()),
            expected="every agent logs the missing-CRD error on each list attempt",
            timeout=10,
        )
        assert not any(agent.ready() for agent in cluster.agents.values())
        for node in cluster.lab.topology.nodes:
            assert not (cluster.agents[node.name].cni_config_dir / CNI_CONFIG_NAME).exists()
    _ensure_crd(cluster)
    for name, agent in cluster.agents.items():
        conflist = json.loads((agent.cni_config_dir / CNI_CONFIG_NAME).read_text())
        assert conflist["plugins"][0]["type"] == "cilium-cni", name
        assert any("Daemon initialization completed" in line for line in cluster.logs[name].snapshot())
    status = cluster.agents[cluster.workers[0].name].exec(["cilium", "status", "--brief"], None)
    assert (status.exit_code, status.stdout) == (0, b"OK\n")


def test_sessions_are_active_until_the_router_knows_the_nodes_then_established(cluster: Cluster) -> None:
    lab = cluster.lab
    lab.router.remove_peers()
    _ensure_policy(cluster)
    wait_for(
        cluster.states,
        lambda states: all(s == ["active"] for s in states.values()),
        expected="every worker's session with the router active (the router refuses it)",
        timeout=30,
        tolerate=(AssertionError,),
    )
    (peer,) = cluster.peers_json(cluster.workers[0].name)
    assert peer["session-state"] == "active"
    assert "uptime-nanoseconds" not in peer
    assert peer["peer-address"] == str(lab.topology.router.address)
    control_plane = next(n for n in lab.topology.nodes if n.role == "control-plane")
    assert cluster.peers_json(control_plane.name) == []

    _ensure_established(cluster)
    (peer,) = cluster.peers_json(cluster.workers[0].name)
    assert peer["local-asn"] == lab.topology.bgp.node_asn
    assert peer["uptime-nanoseconds"] > 0
    renamed = cluster.agents[cluster.workers[0].name].exec(["cilium-dbg", "bgp", "peers"], None)
    assert renamed.exit_code == 127  # the in-pod binary is `cilium-dbg` only from 1.15 (FACTS.md)
    table = cluster.agents[cluster.workers[0].name].exec(["cilium", "bgp", "peers"], None)
    assert table.stdout.decode().startswith("Local AS   Peer AS   Peer Address   Session       Uptime")
    assert "established" in table.stdout.decode()
    unknown = cluster.agents[cluster.workers[0].name].exec(["cilium", "frobnicate"], None)
    assert unknown.exit_code == 1
    assert b'unknown command "frobnicate"' in unknown.stderr


def test_with_router_dials_each_peering_nodes_speaker_listens_and_the_router_dials_it(
    cluster: Cluster,
) -> None:
    """The `router-dials` shortcut: the agent's one speaker per node holds port 179 in the node's
    namespace and the router's established connection goes to it; nodes without the policy label run
    no speaker, so nothing listens there."""
    _ensure_established(cluster)
    lab = cluster.lab
    for node in lab.topology.nodes:
        listeners = lab.node_exec(node.name, ["ss", "-Htlnp", "sport", "=", ":179"])
        processes = set(re.findall(r'\(\("([^"]+)",pid=(\d+)', listeners))  # IPv4 and IPv6: one process
        assert len(processes) == (1 if node in cluster.workers else 0), (node.name, listeners)
        if node in cluster.workers:
            assert {name for name, _ in processes} == {"gobgpd"}
            router_side = json.loads(
                run([*lab.router_vtysh(), "-c", f"show bgp neighbors {node.address} json"]).stdout
            )[str(node.address)]
            assert router_side["portForeign"] == 179, (node.name, router_side["portForeign"])


def test_each_worker_advertises_its_pod_cidr(cluster: Cluster) -> None:
    _ensure_established(cluster)
    router = cluster.lab.router
    for node in cluster.workers:
        cidr = pod_cidr(cluster.lab, node)
        assert cluster.agents[node.name].pod_cidrs == [cidr]  # ipam kubernetes: the Node's, copied
        cilium_node = cluster.kube.get(Resources.CILIUM_NODES, node.name)
        assert cilium_node["spec"]["ipam"]["podCIDRs"] == [str(cidr)]
        wait_for(
            lambda cidr=cidr: [set(route.nexthops) for route in router.bgp_routes(cidr)],  # type: ignore[misc]
            lambda routes, node=node: routes == [{node.address}],  # type: ignore[misc]
            expected=f"{cidr} via {node.address} at the router",
            timeout=cluster.lab.topology.waits.routes,
        )


def _create_service(cluster: Cluster, pod_ip: IPv4Address, lb_ip: IPv4Address) -> None:
    workload = cluster.lab.topology.workload
    ns, name = workload.namespace, workload.service_name
    cluster.kube.create(
        Resources.SERVICES,
        {
            "metadata": {"name": name, "namespace": ns, "labels": {"app": workload.app_label}},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": workload.app_label},
                "ports": [{"port": workload.port, "targetPort": workload.target_port, "protocol": "TCP"}],
            },
        },
        ns,
    )
    cluster.kube.patch(
        Resources.SERVICES,
        name,
        {"status": {"loadBalancer": {"ingress": [{"ip": str(lb_ip)}]}}},
        ns,
        subresource="status",
    )
    node = cluster.workers[0].name
    if _serves(cluster.kube, Resources.ENDPOINT_SLICES):
        cluster.kube.create(
            Resources.ENDPOINT_SLICES,
            {
                "metadata": {"name": f"{name}-x7k2p", "namespace": ns, "labels": {SLICE_LABEL: name}},
                "addressType": "IPv4",
                "ports": [{"name": "", "port": workload.target_port, "protocol": "TCP"}],
                "endpoints": [{"addresses": [str(pod_ip)], "conditions": {"ready": True}, "nodeName": node}],
            },
            ns,
        )
    # The pod, as its kubelet reports it; the agent reads it while the API serves no EndpointSlices.
    cluster.kube.create(
        Resources.PODS,
        {
            "metadata": {"name": workload.pod_name, "namespace": ns, "labels": {"app": workload.app_label}},
            "spec": {
                "nodeName": node,
                "containers": [
                    {
                        "name": "nginx",
                        "image": workload.image,
                        "ports": [{"containerPort": workload.target_port}],
                    }
                ],
            },
        },
        ns,
    )
    cluster.kube.patch(
        Resources.PODS,
        workload.pod_name,
        {
            "status": {
                "phase": "Running",
                "podIP": str(pod_ip),
                "podIPs": [{"ip": str(pod_ip)}],
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
        ns,
        subresource="status",
    )


def _serves(kube: Kube, resource: KubeResource) -> bool:
    try:
        kube.listing(resource)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_a_load_balancer_service_is_announced_by_every_worker_and_reaches_nginx(cluster: Cluster) -> None:
    _ensure_established(cluster)
    lab = cluster.lab
    workload = lab.topology.workload
    lb_ip = next(iter(lab.topology.lb_pools[0].cidrs[0].hosts()))
    prefix = IPv4Network(f"{lb_ip}/32")
    pod_key = f"{workload.namespace}/{workload.pod_name}"
    pod = lab.network.attach_pod(cluster.workers[0].name, pod_key)
    nginx = NginxContainer(
        pod, lab.run.directory / "containers" / workload.pod_name, port=workload.target_port
    )
    workers = {node.address for node in cluster.workers}
    try:
        nginx.start()
        _create_service(cluster, pod.ip, lb_ip)
        wait_for(
            lambda: [set(route.nexthops) for route in lab.router.fib_routes(prefix)],
            lambda routes: routes == [workers],
            expected=f"one kernel route for {prefix} via every worker at the router",
            timeout=lab.topology.waits.routes,
        )
        url = f"http://{lb_ip}:{workload.port}/"
        page = wait_for(
            lambda: lab.client_exec(["curl", "-sS", "--max-time", "2", url], timeout=10),
            lambda text: text == STOCK_INDEX_HTML,
            expected=f"GET {url} from the client returns nginx's page",
            timeout=lab.topology.waits.http,
            tolerate=(Exception,),
        )
        assert page.value == STOCK_INDEX_HTML
        (peer,) = cluster.peers_json(cluster.workers[0].name)
        families = {(f["afi"], f["safi"]): f for f in peer["families"]}
        assert families[("ipv4", "unicast")]["advertised"] == 2  # pod CIDR and the LB /32
        # Each agent programs only its own node: the control plane holds the service too, in its netns.
        entries = ServiceDatapath(lab.network).translations(f"{workload.namespace}/{workload.service_name}")
        assert set(entries) == {node.name for node in lab.topology.nodes}

        cluster.kube.delete(Resources.SERVICES, workload.service_name, workload.namespace)
        wait_for(
            lambda: lab.router.bgp_routes(prefix),
            lambda routes: routes == [],
            expected=f"{prefix} withdrawn from the router after the service is deleted",
            timeout=lab.topology.waits.routes,
        )
        wait_for(
            lambda: ServiceDatapath(lab.network).dump(),
            lambda dumps: not any("BGPC-SVC-" in text for text in dumps.values()),
            expected="the service's NAT chains removed from every node",
            timeout=10,
        )
    finally:
        for resource, name in (
            (Resources.SERVICES, workload.service_name),
            (Resources.ENDPOINT_SLICES, f"{workload.service_name}-x7k2p"),
            (Resources.PODS, workload.pod_name),
        ):
            with contextlib.suppress(ApiException):  # 404 when EndpointSlices are not served
                cluster.kube.delete(resource, name, workload.namespace)
        nginx.stop()
        lab.network.detach_pod(pod_key)


def test_two_policies_selecting_one_node_clear_its_bgp_and_log_the_error(cluster: Cluster) -> None:
    _ensure_established(cluster)
    lab = cluster.lab
    victim = cluster.workers[-1]
    second = {
        "metadata": {"name": SECOND_POLICY},
        "spec": {
            "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": victim.name}},
            "virtualRouters": [
                {
                    "localASN": lab.topology.bgp.node_asn,
                    "neighbors": [{"peerAddress": f"{lab.topology.router.address}/32", "peerASN": 64512}],
                }
            ],
        },
    }
    cluster.kube.create(Resources.BGP_PEERING_POLICIES, second)
    try:
        wait_for(
            lambda: POLICY_SELECTION_FAILED in cluster.logs[victim.name].snapshot(),
            bool,
            expected=f"{victim.name}'s agent logs the policy selection error",
            timeout=10,
        )
        wait_for(
            lambda: cluster.peers_json(victim.name),
            lambda peers: peers == [],
            expected=f"{victim.name} has no BGP peers any more",
            timeout=10,
        )
        wait_for(
            lambda: {session.peer: session.state for session in lab.router.sessions()},
            lambda states: states.get(victim.address) is not SessionState.ESTABLISHED,
            expected=f"the router's session with {victim.address} down",
            timeout=SESSION_WAIT,
        )
        # FRR reports the state change before it has flushed the peer's paths from its RIB.
        wait_for(
            lambda: lab.router.bgp_routes(pod_cidr(lab, victim)),
            lambda routes: routes == [],
            expected=f"no route to {pod_cidr(lab, victim)} at the router",
            timeout=10,
        )
        others = [n for n in cluster.workers if n != victim]
        assert all(cluster.states()[n.name] == ["established"] for n in others)
        assert not any(
            POLICY_SELECTION_FAILED in line for n in others for line in cluster.logs[n.name].snapshot()
        )
    finally:
        cluster.kube.delete(Resources.BGP_PEERING_POLICIES, SECOND_POLICY)
    _ensure_established(cluster)


def test_the_in_agent_table_keeps_go_s_layout() -> None:
    assert (
        agent_table([])
        == "Local AS   Peer AS   Peer Address   Session   Uptime   Family   Received   Advertised\n"
    )


def test_the_kubelet_program_takes_its_version_from_the_image_and_needs_the_cni_directory(
    cluster: Cluster, tmp_path: Path
) -> None:
    node = cluster.workers[0]
    registered: list[object] = []

    def context(**extra: object) -> ContainerContext:
        return ContainerContext(
            pod={"metadata": {"name": "cilium-6fnjv", "namespace": "kube-system"}},
            container={"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.13.4@sha256:abc"},
            node=node,
            topology=cluster.lab.topology,
            network=cluster.lab.network,
            kubeconfig=cluster.kubeconfig,
            directory=tmp_path / "container",
            attachment=None,
            log=lambda line: None,
            register_exec=registered.append,
            extra=dict(extra),
        )

    program = AgentProgram(context(cni_config_dir=tmp_path / "net.d", crd_wait_timeout=7))
    try:
        assert (program.agent.version, program.agent.crd_wait_timeout) == ("1.13.4", 7.0)
        assert program.agent.cni_config_dir == tmp_path / "net.d"
    finally:
        program.stop()  # never started: stopping only closes its client
    without = AgentProgram(context())
    try:
        with pytest.raises(HarnessError, match="cni_config_dir"):
            without.start()
        assert registered == []
    finally:
        without.stop()


def test_without_the_crd_the_agent_exits_after_crd_wait_timeout(lab: Lab, tmp_path: Path) -> None:
    """Cilium's `crd-wait-timeout` (5m, here 1.5 s): the agent exits fatally and the kubelet restarts it."""
    server = ApiServer(tmp_path / "api")
    server.start()
    api_client = new_api_client(str(server.kubeconfig_path))
    log = AgentLog()
    agent = Agent(
        Kube(api_client),
        node=lab.topology.workers[0],
        topology=lab.topology,
        network=lab.network,
        directory=tmp_path / "agent",
        cni_config_dir=tmp_path / "net.d",
        log=log,
        crd_wait_timeout=1.5,
    )
    try:
        Kube(api_client).create(
            Resources.CONFIGMAPS,
            {
                "metadata": {"name": "cilium-config", "namespace": "kube-system"},
                "data": {"enable-bgp-control-plane": "true"},
            },
            "kube-system",
        )
        agent.start()
        wait_for(agent.exit_code, lambda code: code == 1, expected="the agent exits with 1", timeout=10)
        assert not agent.ready()
        lines = log.snapshot()
        assert lines.count(BGP_CRD_MISSING) >= 2
        assert lines[-1].startswith('level=fatal msg="Unable to find all Cilium CRDs necessary within 1.5s')
        assert not (tmp_path / "net.d" / CNI_CONFIG_NAME).exists()
    finally:
        agent.stop()
        api_client.close()  # type: ignore[no-untyped-call]
        server.stop()
