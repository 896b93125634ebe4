"""The lab's wire: one namespace per node, a switch, the router, an outside client, pods on demand.

Layout (all links are veth pairs created directly inside their namespaces, so the root namespace
never holds a lab interface, route or rule):

    client --eth0/eth1-- router --eth0-- [switch br0] --eth0-- node, node, node ...
                                                        node --lxc*/eth0-- pod

A node has no pod network until Cilium's IPAM gives it a pod CIDR: the node's agent assigns it here
(`assign_pod_cidr`) once the operator wrote it into the node's CiliumNode, and routes the other nodes'
CIDRs as it learns them (`route_pod_cidr`): Cilium's native routing with direct node routes; the
walkthrough's cluster used tunnel mode, which changes nothing a step can observe from outside.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from bgpconform.errors import LabError
from bgpconform.lab import defects
from bgpconform.lab.netns import ip_batch, set_sysctls
from bgpconform.lab.runs import Run, remove_namespace
from bgpconform.topology import Node, Topology

CONFIGURE_AT_ONCE = 6  # namespaces configured in parallel: `ip` and `sysctl` are mostly kernel waits
SWITCH_BRIDGE = "br0"
UPLINK = "eth0"
ROUTER_NORTH = "eth1"
NODE_GATEWAY_DEVICE = "cilium_host"
FORWARDING = {
    "net.ipv4.ip_forward": "1",
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
}
# The router hashes ECMP on the 5-tuple, as Calico's tests set it for spread (FACTS.md), so the flows of
# one outside client enter through different nodes, as those of many clients would.
ROUTER_SYSCTLS = {"net.ipv4.fib_multipath_hash_policy": "1"}
# What cilium-cni 1.13 answers when the agent's socket is not where it dials (defect
# `cni-cannot-reach-agent`); containerd wraps it in FailedCreatePodSandBox.
CNI_CANNOT_REACH_AGENT = (
    'plugin type="cilium-cni" failed (add): unable to connect to Cilium daemon: failed to create '
    "cilium agent client after 30.000000 seconds timeout: "
    'Get "http:///var/run/cilium/cilium.sock/v1/config": '
    "dial unix /var/run/cilium/cilium.sock: connect: no such file or directory"
)


@dataclass(frozen=True)
class PodAttachment:
    """A pod's namespace and its address on its node's pod network."""

    namespace: str
    node: str
    ip: IPv4Address
    gateway: IPv4Address
    host_device: str


@dataclass
class _NodeIpam:
    """Hands out pod addresses from one node's pod CIDR; the first host address is the node's gateway."""

    cidr: IPv4Network
    used: set[IPv4Address] = field(default_factory=set)

    @property
    def gateway(self) -> IPv4Address:
        return next(iter(self.cidr.hosts()))

    def allocate(self) -> IPv4Address:
        for address in self.cidr.hosts():
            if address != self.gateway and address not in self.used:
                self.used.add(address)
                return address
        raise RuntimeError(f"pod CIDR {self.cidr} is exhausted")

    def release(self, address: IPv4Address) -> None:
        self.used.discard(address)


class LabNetwork:
    """Builds and extends the lab's namespaces and links for one run."""

    def __init__(self, topology: Topology, run: Run) -> None:
        self.topology = topology
        self.run = run
        self.switch_ns = run.namespace("switch")
        self.router_ns = run.namespace("router")
        self.client_ns = run.namespace("client")
        self.node_ns = {node.name: run.namespace(f"node-{node.name}") for node in topology.nodes}
        self._ipam: dict[str, _NodeIpam] = {}
        self._pods: dict[str, PodAttachment] = {}
        self._gateway_ready: set[str] = set()
        self._lock = threading.Lock()

    @property
    def namespaces(self) -> list[str]:
        """Every long-lived namespace of the lab, the router's first."""
        return [self.router_ns, self.switch_ns, self.client_ns, *self.node_ns.values()]

    def build(self) -> None:
        """Create namespaces, links, addresses and routes for the whole topology."""
        topo = self.topology
        subnet = topo.cluster.node_subnet
        ip_batch(f"netns add {ns}" for ns in self.namespaces)
        links = [
            _veth(UPLINK, self.router_ns, "r0", self.switch_ns),
            _veth(ROUTER_NORTH, self.router_ns, UPLINK, self.client_ns),
        ]
        for index, node in enumerate(topo.nodes):
            links.append(_veth(UPLINK, self.node_ns[node.name], f"n{index}", self.switch_ns))
        ip_batch(links)
        switch = [f"link add {SWITCH_BRIDGE} type bridge", f"link set {SWITCH_BRIDGE} up", "link set lo up"]
        switch += [f"link set r0 master {SWITCH_BRIDGE}", "link set r0 up"]
        for index in range(len(topo.nodes)):
            switch += [f"link set n{index} master {SWITCH_BRIDGE}", f"link set n{index} up"]
        router_south = IPv4Interface(f"{topo.router.address}/{subnet.prefixlen}")
        router = [
            "link set lo up",
            f"addr add {router_south} dev {UPLINK}",
            f"link set {UPLINK} up",
            f"addr add {topo.router.north_address} dev {ROUTER_NORTH}",
            f"link set {ROUTER_NORTH} up",
        ]
        client = [
            "link set lo up",
            f"addr add {topo.client.address} dev {UPLINK}",
            f"link set {UPLINK} up",
            f"route add default via {topo.client.gateway} dev {UPLINK}",
        ]
        # Each namespace is configured on its own from here: a few at once, one process at a time each.
        configure = [
            functools.partial(ip_batch, switch, self.switch_ns),
            functools.partial(self._configure, router, self.router_ns, {**FORWARDING, **ROUTER_SYSCTLS}),
            functools.partial(ip_batch, client, self.client_ns),
        ]
        for node in topo.nodes:
            namespace = self.node_ns[node.name]
            configure.append(
                functools.partial(self._configure, self._node_commands(node), namespace, FORWARDING)
            )
        with ThreadPoolExecutor(max_workers=CONFIGURE_AT_ONCE, thread_name_prefix="lab-netns") as pool:
            for done in [pool.submit(step) for step in configure]:
                done.result()

    @staticmethod
    def _configure(commands: list[str], namespace: str, sysctls: dict[str, str]) -> None:
        ip_batch(commands, namespace)
        set_sysctls(namespace, sysctls)

    def _node_commands(self, node: Node) -> list[str]:
        subnet = self.topology.cluster.node_subnet
        commands = [
            "link set lo up",
            f"addr add {node.address}/{subnet.prefixlen} dev {UPLINK}",
            f"link set {UPLINK} up",
            f"route add default via {self.topology.router.address} dev {UPLINK}",
        ]
        return commands

    def switch_port(self, node_name: str) -> str:
        """The switch's end of the node's link (`n<index>` in the switch namespace)."""
        names = [node.name for node in self.topology.nodes]
        if node_name not in names:
            raise KeyError(f"no node {node_name!r} in the lab (nodes: {', '.join(names)})")
        return f"n{names.index(node_name)}"

    def set_switch_port(self, node_name: str, up: bool) -> None:
        """A pulled cable: the node's link loses its carrier, its addresses and routes stay."""
        ip_batch([f"link set {self.switch_port(node_name)} {'up' if up else 'down'}"], self.switch_ns)

    def assign_pod_cidr(self, node_name: str, cidr: IPv4Network) -> IPv4Address:
        """Give a node its pod network: the CIDR its pods take addresses from, and `cilium_host` with
        the CIDR's first address (the pods' gateway, Cilium's router IP). Returns that gateway."""
        with self._lock:
            current = self._ipam.get(node_name)
            if current is not None and current.cidr == cidr:
                return current.gateway
            if current is not None and current.used:
                raise LabError(
                    f"{node_name} already runs pods from {current.cidr}; cannot move them to {cidr}"
                )
            ipam = _NodeIpam(cidr)
            node_ns = self.node_ns[node_name]
            if node_name not in self._gateway_ready:
                # Cilium's own layout: cilium_host/cilium_net, a veth pair holding the router IP.
                ip_batch(
                    [
                        f"link add {NODE_GATEWAY_DEVICE} type veth peer name cilium_net",
                        "link set cilium_net up",
                        f"link set {NODE_GATEWAY_DEVICE} up",
                    ],
                    node_ns,
                )
                self._gateway_ready.add(node_name)
            else:
                ip_batch([f"addr flush dev {NODE_GATEWAY_DEVICE}"], node_ns)
            ip_batch([f"addr add {ipam.gateway}/32 dev {NODE_GATEWAY_DEVICE}"], node_ns)
            self._ipam[node_name] = ipam
            return ipam.gateway

    def pod_cidr(self, node_name: str) -> IPv4Network | None:
        """The pod CIDR a node's pods take addresses from, once its agent assigned one."""
        with self._lock:
            ipam = self._ipam.get(node_name)
            return ipam.cidr if ipam is not None else None

    def route_pod_cidr(self, node_name: str, cidr: IPv4Network, via: IPv4Address) -> None:
        """On `node_name`, reach another node's pods through that node (a direct node route)."""
        ip_batch([f"route replace {cidr} via {via} dev {UPLINK}"], self.node_ns[node_name])

    def unroute_pod_cidr(self, node_name: str, cidr: IPv4Network) -> None:
        ip_batch([f"route del {cidr}"], self.node_ns[node_name])

    def attach_pod(self, node_name: str, pod_key: str) -> PodAttachment:
        """Give a pod its own namespace wired to its node, with the next free address of the node's CIDR.

        This is cilium-cni's ADD, which containerd runs for every sandbox outside the host network."""
        if defects.active("cni-cannot-reach-agent"):
            raise LabError(CNI_CANNOT_REACH_AGENT)
        with self._lock:
            if pod_key in self._pods:
                return self._pods[pod_key]
            node_ns = self.node_ns[node_name]
            ipam = self._ipam.get(node_name)
            if ipam is None:  # cilium-cni asks the agent, which has no pod CIDR from IPAM yet
                raise LabError(f"no pod CIDR has been assigned to {node_name} yet")
            address = ipam.allocate()
            digest = hashlib.sha1(pod_key.encode()).hexdigest()[:8]
            namespace = self.run.namespace(f"pod-{digest}")
            host_device = f"lxc{digest}"
            attachment = PodAttachment(namespace, node_name, address, ipam.gateway, host_device)
            try:
                ip_batch([f"netns add {namespace}"])
                ip_batch([_veth(host_device, node_ns, UPLINK, namespace)])
                ip_batch(
                    [
                        "link set lo up",
                        f"addr add {address}/32 dev {UPLINK}",
                        f"link set {UPLINK} up",
                        f"route add {ipam.gateway} dev {UPLINK} scope link",
                        f"route add default via {ipam.gateway} dev {UPLINK}",
                    ],
                    namespace,
                )
                ip_batch([f"link set {host_device} up", f"route add {address}/32 dev {host_device}"], node_ns)
            except Exception:
                ipam.release(address)
                remove_namespace(namespace)
                raise
            self._pods[pod_key] = attachment
            return attachment

    def detach_pod(self, pod_key: str) -> None:
        """Remove a pod's namespace (its veth and the node's route to it go with it) and free its address."""
        with self._lock:
            attachment = self._pods.pop(pod_key, None)
            if attachment is None:
                return
            # Deleting the host end first removes the pair and the node's route at once; a deleted
            # namespace's links are reaped by the kernel later, too late for an address reused next.
            ip_batch([f"link delete {attachment.host_device}"], self.node_ns[attachment.node])
            remove_namespace(attachment.namespace)
            self._ipam[attachment.node].release(attachment.ip)

    @property
    def pods(self) -> dict[str, PodAttachment]:
        with self._lock:
            return dict(self._pods)


def _veth(name: str, namespace: str, peer: str, peer_namespace: str) -> str:
    """A veth pair created straight inside its two namespaces, never in the root namespace."""
    return f"link add {name} netns {namespace} type veth peer name {peer} netns {peer_namespace}"
