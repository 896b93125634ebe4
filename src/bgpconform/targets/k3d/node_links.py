"""A k3d node's cable: the node container disconnected from the nodes' Docker network and connected
again with the same address, so its BGP session dies by the hold timer as a real node's does. The
router (CHR) reboots through its API, as on a rack."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from bgpconform.errors import HarnessError
from bgpconform.routers.port import RouterPort
from bgpconform.targets.unsupported_faults import reboot_router
from bgpconform.topology import Topology


@dataclass(frozen=True)
class NodeContainer:
    container: str
    address: IPv4Address


def node_containers(topology: Topology, run_name: str) -> dict[str, NodeContainer]:
    """k3d names node containers by role and order (`k3d-<run>-server-0`, `k3d-<run>-agent-0`), in
    the order the plan hands the topology's nodes to `k3d cluster create`."""
    servers = [n for n in topology.nodes if n.role == "control-plane"]
    agents = [n for n in topology.nodes if n.role == "worker"]
    found = {n.name: NodeContainer(f"k3d-{run_name}-server-{i}", n.address) for i, n in enumerate(servers)}
    found |= {n.name: NodeContainer(f"k3d-{run_name}-agent-{i}", n.address) for i, n in enumerate(agents)}
    return found


class DockerNodeLinks:
    def __init__(
        self, client: Any, network: str, nodes: dict[str, NodeContainer], router: RouterPort
    ) -> None:
        self.client = client  # docker.DockerClient
        self.network = network
        self.nodes = nodes
        self.router = router

    def _node(self, node: str) -> NodeContainer:
        found = self.nodes.get(node)
        if found is None:
            raise HarnessError(f"no node {node!r} in the topology (nodes: {', '.join(sorted(self.nodes))})")
        return found

    def isolate_node(self, node: str) -> None:
        self.client.networks.get(self.network).disconnect(self._node(node).container)

    def restore_node(self, node: str) -> None:
        found = self._node(node)
        self.client.networks.get(self.network).connect(found.container, ipv4_address=str(found.address))

    def restart_router(self) -> None:
        reboot_router(self.router, "k3d")
