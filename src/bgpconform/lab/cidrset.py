"""A cluster CIDR cut into per-node blocks, handed out as Kubernetes' `cidrset.CidrSet` does.

kube-controller-manager's node IPAM (k3s: 10.42.0.0/16, /24 a node) and Cilium's cluster-pool IPAM
(`pkg/ipam/cidrset`, a fork of it; default 10.0.0.0/8, /24 a node) both take the next free block after
the one they handed out last, wrapping at the end, and both mark the blocks already written into
objects as taken when they start. So which node gets which block follows the order the allocator
hears of the nodes, not the order anyone lists them in.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network


class CidrSetFull(Exception):
    """Every block of the cluster CIDR is taken."""


class CidrSet:
    """Blocks of `/mask` inside `cluster`, by index; `allocate_next` scans on from the last one."""

    def __init__(self, cluster: IPv4Network, mask: int) -> None:
        if mask <= cluster.prefixlen or mask > 32:
            raise ValueError(f"/{mask} blocks do not split {cluster}")
        self.cluster = cluster
        self.mask = mask
        self.size = 1 << (mask - cluster.prefixlen)
        self._step = 1 << (32 - mask)
        self._taken: set[int] = set()
        self._next = 0

    def block(self, index: int) -> IPv4Network:
        return IPv4Network((IPv4Address(int(self.cluster.network_address) + index * self._step), self.mask))

    def _index(self, cidr: IPv4Network) -> int | None:
        if cidr.prefixlen != self.mask or not cidr.subnet_of(self.cluster):
            return None
        return (int(cidr.network_address) - int(self.cluster.network_address)) // self._step

    def occupy(self, cidr: IPv4Network) -> bool:
        """Mark a block already in use (read back from the objects); False if it is not one of ours."""
        index = self._index(cidr)
        if index is None:
            return False
        self._taken.add(index)
        return True

    def release(self, cidr: IPv4Network) -> None:
        index = self._index(cidr)
        if index is not None:
            self._taken.discard(index)

    def allocate_next(self) -> IPv4Network:
        for offset in range(self.size):
            index = (self._next + offset) % self.size
            if index not in self._taken:
                self._taken.add(index)
                self._next = (index + 1) % self.size
                return self.block(index)
        raise CidrSetFull(
            f"CIDR allocation failed; there are no remaining CIDRs left to allocate in {self.cluster}"
        )
