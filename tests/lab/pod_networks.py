"""What every node's Cilium agent does to the wire once IPAM answered, for tests that run the wire
without agents: a block of the topology's pod CIDR pool per node, and routes between them."""

from __future__ import annotations

from ipaddress import IPv4Network

from bgpconform.lab.lab import Lab


def give_pod_networks(lab: Lab) -> dict[str, IPv4Network]:
    """Node name -> its block (here in topology order; the lab's operator hands them by arrival)."""
    cluster = lab.topology.cluster
    blocks = cluster.cluster_pool.subnets(new_prefix=cluster.pod_cidr_mask_size)
    given = {node.name: next(blocks) for node in lab.topology.nodes}
    for node in lab.topology.nodes:
        lab.network.assign_pod_cidr(node.name, given[node.name])
        for other in lab.topology.nodes:
            if other.name != node.name:
                lab.network.route_pod_cidr(node.name, given[other.name], other.address)
    return given
