"""The topology: which machines, addresses and BGP settings a run is about, validated before anything runs."""

from bgpconform.topology.loader import Override, load_topology, parse_topology
from bgpconform.topology.model import (
    Bgp,
    BgpTimers,
    Client,
    Cluster,
    Credentials,
    Disruption,
    LbPool,
    Management,
    Node,
    Router,
    Scale,
    ServiceSelector,
    Topology,
    Vtysh,
    Waits,
    Workload,
)
from bgpconform.topology.problems import Problem, TopologyError, format_problems

__all__ = [
    "Bgp",
    "BgpTimers",
    "Client",
    "Cluster",
    "Credentials",
    "Disruption",
    "LbPool",
    "Management",
    "Node",
    "Override",
    "Problem",
    "Router",
    "Scale",
    "ServiceSelector",
    "Topology",
    "TopologyError",
    "Vtysh",
    "Waits",
    "Workload",
    "format_problems",
    "load_topology",
    "parse_topology",
]
