"""Which node each probe request entered the cluster through, read from the backend's access log.

A request that entered on the backend's own node reaches nginx from the client's address; one that
entered elsewhere is source-NATed to that node's address (Cilium's SNAT for externalTrafficPolicy
Cluster), so the logged remote address names the entry node either way. The probe's sequence number
rides in the query string (`bgpconform.disruption.request_stream`), which nginx's combined log keeps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from ipaddress import IPv4Address

from bgpconform.disruption.request_stream import PROBE_QUERY

_PROBE_LINE = re.compile(
    r'^(\d+\.\d+\.\d+\.\d+) - \S+ \[[^\]]+\] "GET /\?' + re.escape(PROBE_QUERY) + r"=(\d+) [^\"]*\" (\d{3}) "
)


def entry_node(
    remote: IPv4Address, client: IPv4Address, backend_node: str, nodes_by_address: Mapping[IPv4Address, str]
) -> str | None:
    """The node a request logged from `remote` entered through (None: an address of no node)."""
    return backend_node if remote == client else nodes_by_address.get(remote)


def entry_nodes(
    log: str, client: IPv4Address, backend_node: str, nodes_by_address: Mapping[IPv4Address, str]
) -> dict[int, str]:
    """Probe sequence number -> entry node, for every probe request in one backend pod's log."""
    found: dict[int, str] = {}
    for line in log.splitlines():
        matched = _PROBE_LINE.match(line)
        if matched is None:
            continue
        node = entry_node(IPv4Address(matched.group(1)), client, backend_node, nodes_by_address)
        if node is not None:
            found[int(matched.group(2))] = node
    return found
