"""Defects the lab can be started with: real ways Cilium, k3s or the router go wrong.

Each one is switched on by name (`pytest --lab-defect NAME`, `bgpconform lab up --defect NAME`) and
lives where the real bug lives: in the emulated kubelet, agent, operator, LB IPAM or datapath, never in
the harness's adapters, so the harness meets it as it would meet the bug on a rack. The catalogue
names the Then step that must catch each one; `tests/suite/test_defects.py` runs the scenarios and
checks that this step, and no earlier one, fails with expected and observed.

The active set is process-wide (`bgpconform.lab.switches`); `LabCluster.start` sets it (to nothing for
a healthy lab), and every emulated component asks `active(NAME)` where its bug would be.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bgpconform.lab.switches import Switches

if TYPE_CHECKING:  # the RouterOS stand-in image carries this module, and no pydantic
    from bgpconform.topology import Node


@dataclass(frozen=True)
class Defect:
    name: str
    lives_in: str
    source: str  # a cilium/cilium issue cited in FACTS.md ("Known regressions"), or a misconfiguration
    summary: str
    caught_by: str  # the Then step that names the broken promise
    topology: str = "lab.yaml"  # under topologies/: where the defect's component exists
    shortcuts: tuple[str, ...] = ("short-bgp-timers", "router-dials")  # the lab shortcuts its test runs with
    waits: tuple[tuple[str, float], ...] = ()  # `waits` its test sets beyond the short ones


CATALOGUE: dict[str, Defect] = {
    defect.name: defect
    for defect in (
        Defect(
            "nodes-ready-without-cni",
            "kubelet (containerd's NetworkReady)",
            "misconfiguration: a leftover CNI config from an earlier install",
            "nodes report Ready before any CNI runs",
            "every node is NotReady because the CNI plugin is not initialized",
        ),
        Defect(
            "node-never-network-ready",
            "kubelet (containerd's NetworkReady)",
            "misbehaviour: one node's runtime never loads the CNI config Cilium wrote",
            "the last node (by name) stays NotReady with Cilium running on it",
            "every node is Ready",
        ),
        Defect(
            "operator-never-ready",
            "Cilium operator (its readiness)",
            "misbehaviour: the operator's health endpoint never reports ready",
            "operator replicas run and never become ready",
            "a Cilium agent runs on every node and every replica of the Cilium operator is ready",
        ),
        Defect(
            "agents-ready-without-policy-crd",
            "Cilium agent (start-up)",
            "regression shape of #29371/#30091 (CRDs missing without an operator restart)",
            "agents report ready while the peering policy CRD is not served",
            "the Cilium agents are not ready and log that the BGP resources are missing",
        ),
        Defect(
            "agents-never-notice-policy-crd",
            "Cilium agent (start-up)",
            "regression shape of #29371/#30091: agents stuck until restarted by hand",
            "agents that found the CRD missing never list it again, so they stay not ready",
            "every Cilium agent is ready",
        ),
        Defect(
            "operator-registers-no-bgp-crd",
            "Cilium operator (CRD registration)",
            "#29371, #30091 (CRDs missing after a restart)",
            "a restarted operator registers no BGP peering policy CRD",
            "the operator logs that it created the BGP configuration resources",
        ),
        Defect(
            "agent-ignores-node-selector",
            "Cilium agent (BGP control plane)",
            "misbehaviour: a policy's nodeSelector not applied",
            "every node peers, labelled or not",
            "every node without the policy label has no BGP session",
        ),
        Defect(
            "operator-ignores-cluster-config-node-selector",
            "Cilium operator (BGPv2 node configs)",
            "misbehaviour: a cluster config's nodeSelector not applied when deriving node configs",
            "every node gets a CiliumBGPNodeConfig, labelled or not",
            "every node without the policy label has no BGP session",
            topology="lab-bgpv2.yaml",
        ),
        Defect(
            "node-config-status-never-written",
            "Cilium agent (BGPv2 node status, 1.17+)",
            "misbehaviour: the status reporter of PR #33411 stalls, CiliumBGPNodeConfig.status stays empty",
            "no agent writes its peers into its node config's status",
            "every labelled node's BGP node config reports its session with the router established",
            topology="lab-bgpv2.yaml",
        ),
        Defect(
            "agent-dials-wrong-peer-asn",
            "Cilium agent (BGP control plane)",
            "misconfiguration: the node side expects another peer ASN, sessions stay active",
            "each node's speaker expects the router's ASN plus one",
            "every labelled node's session with the router is established on both sides",
        ),
        Defect(
            "pod-cidr-not-advertised",
            "Cilium agent (BGP control plane)",
            "#24069 (not re-advertised after an agent restart), #32886 (missing on some nodes)",
            "nodes announce no pod CIDR although the policy exports it",
            "every labelled node advertises its pod CIDR",
        ),
        Defect(
            "lb-ip-never-announced",
            "Cilium agent (BGP control plane)",
            "#35121 (LB IPs not advertised at all)",
            "no node announces LoadBalancer /32s",
            "the router learns that address as a /32 from every labelled node",
        ),
        Defect(
            "lb-ip-announced-by-one-node",
            "Cilium agent (BGP control plane)",
            "#33076, #34146 (LB IPs not advertised by every instance)",
            "only the first peering node (by name) announces LoadBalancer /32s",
            "the router learns that address as a /32 from every labelled node",
        ),
        Defect(
            "pool-service-selector-ignored",
            "Cilium operator (LB IPAM)",
            "misbehaviour: a pool's serviceSelector not applied, so the first pool with room serves all",
            "every pool serves every service, whatever its serviceSelector",
            "every scale service holds its own external IP from its pool",
            topology="lab-services.yaml",
        ),
        Defect(
            "agent-announces-at-most-32-services",
            "Cilium agent (BGP control plane)",
            "#36055 shape (announcements of some of several services on one backend missing)",
            "each agent announces only the 32 lowest LoadBalancer /32s; a handful of services never shows it",
            "the router has a path to every scale service's LB IP from every peering node",
            topology="lab-services.yaml",
        ),
        Defect(
            "service-map-too-small",
            "Cilium agent (service datapath)",
            "misconfiguration: the service map sized below the frontends (docs.cilium.io, eBPF Maps)",
            "each agent programs only 32 LoadBalancer frontends; the others are announced and lead nowhere",
            "every scale service's LB IP answers HTTP from outside",
            topology="lab-services.yaml",
        ),
        Defect(
            "withdrawals-lost-in-a-burst",
            "Cilium agent (BGP control plane)",
            "#38924 shape (a reconcile not triggered for a removal leaves a stale advertisement)",
            "when several services go in one reconcile, an agent withdraws one /32 and forgets the rest",
            "the router withdraws every scale service's LB IP",
            topology="lab-services.yaml",
        ),
        Defect(
            "address-outside-pool-handed-out",
            "Cilium operator (LB IPAM)",
            "misbehaviour: an off-by-one in the allocator's range hands out the address past a block's end",
            "a pool's first allocation is the address just after its CIDR",
            "the service gets an external IP inside the first pool",
        ),
        Defect(
            "first-last-ips-withheld",
            "Cilium operator (LB IPAM)",
            "misbehaviour: 1.16's allowFirstLastIPs default (Yes) not applied (FACTS.md, LB IPAM)",
            "pools keep a CIDR's first and last addresses out, as before 1.16",
            "every service gets the address it asked for, the first and last included",
            topology="lab-bgpv2.yaml",
        ),
        Defect(
            "network-address-handed-out",
            "Cilium operator (LB IPAM)",
            "misbehaviour: 1.13-1.14 never allocate a CIDR's network address (FACTS.md, LB IPAM)",
            "a pool hands out its CIDR's network address first",
            "only the services asking for the two middle addresses get them",
        ),
        Defect(
            "request-satisfied-never-written",
            "Cilium operator (LB IPAM)",
            "misbehaviour: the service condition is not written",
            "an allocated service gets no request-satisfied condition",
            "the service reports that its IP request is satisfied",
        ),
        Defect(
            "conflicting-pool-allocates",
            "Cilium operator (LB IPAM)",
            "misbehaviour: a pool marked conflicting must allocate nothing (FACTS.md, LB IPAM)",
            "a pool marked conflicting still satisfies requests for its addresses",
            "the service gets no external IP",
        ),
        Defect(
            "older-pool-marked-conflicting",
            "Cilium operator (LB IPAM)",
            "misbehaviour: the newer of two overlapping pools must be marked (FACTS.md, LB IPAM)",
            "the older of two overlapping pools is marked conflicting",
            "the second pool is marked conflicting because its CIDR overlaps the first pool's",
        ),
        Defect(
            "operator-registers-bgp-crd-regardless",
            "Cilium operator (CRD registration)",
            "misbehaviour: the BGP CRD is gated on enable-bgp-control-plane at start (FACTS.md)",
            "the operator registers the peering policy CRD with BGP off",
            "the BGP configuration resources are not served",
        ),
        Defect(
            "agent-dials-no-neighbor",
            "Cilium agent (BGP control plane)",
            "misbehaviour: the policy's neighbors are dropped",
            "selected nodes run a BGP server with no neighbor, so no session exists at all",
            "every labelled node has a session with the router in state active",
        ),
        Defect(
            "pod-cidr-announced-by-every-node",
            "Cilium agent (BGP control plane)",
            "misbehaviour: a node announces pod CIDRs it does not own",
            "each peering node announces every peering node's pod CIDR",
            "the router's table holds every labelled node's pod CIDR through that node",
        ),
        Defect(
            "unsatisfied-request-without-reason",
            "Cilium operator (LB IPAM)",
            "misbehaviour: an unsatisfiable request must say why (FACTS.md, LB IPAM reasons)",
            "a request no pool can satisfy gets a condition with no reason and no message",
            "the service reports that no pool can satisfy its request",
        ),
        Defect(
            "conflict-stops-every-pool",
            "Cilium operator (LB IPAM)",
            "misbehaviour: a conflict disables only the marked pool (FACTS.md, LB IPAM)",
            "while any pool is marked conflicting no pool allocates",
            "a new LoadBalancer service still gets an address from the first pool",
        ),
        Defect(
            "both-overlapping-pools-marked",
            "Cilium operator (LB IPAM)",
            "misbehaviour: only the newer of two overlapping pools is marked (FACTS.md, LB IPAM)",
            "both overlapping pools are marked conflicting",
            "the first pool is not marked conflicting",
        ),
        Defect(
            "conflict-mark-never-lifted",
            "Cilium operator (LB IPAM)",
            "misbehaviour: the mark goes once the overlap goes (FACTS.md, LB IPAM)",
            "a pool stays marked conflicting after its overlap is removed",
            "the second pool is no longer marked conflicting",
        ),
        Defect(
            "service-nat-on-one-node",
            "Cilium datapath (service load balancing)",
            "misbehaviour: every node translates an announced LB IP",
            "only the first peering node translates LB IPs; the others announce them and drop",
            "every request gets the nginx welcome page",
        ),
        Defect(
            "router-without-ecmp",
            "router (its base BGP configuration)",
            "misconfiguration: maximum-paths 1 where the topology says the router does ECMP",
            "the router installs one of the equal paths",
            "the requests entered through more than one labelled node when the router does ECMP",
        ),
        Defect(
            "service-nat-missing",
            "Cilium datapath (service load balancing)",
            "misbehaviour: LB IP announced but not translated to the backend",
            "nodes accept traffic to the LB IP and never translate it to nginx",
            "it gets the nginx welcome page",
        ),
        Defect(
            "addons-on-host-network",
            "k3s (its packaged addon manifests)",
            "misconfiguration: CoreDNS and local-path edited onto the host network, tolerating every taint",
            "the cluster's own pods run before any CNI, so nothing shows the cluster lacks one",
            "the cluster DNS and storage pods are Pending",
        ),
        Defect(
            "cni-cannot-reach-agent",
            "Cilium CNI plugin (cilium-cni ADD)",
            "misconfiguration: the agent's socket is not where cilium-cni dials it",
            "every pod sandbox fails with 'unable to connect to Cilium daemon'; host-network pods run",
            "the cluster DNS and storage pods are Running",
        ),
        Defect(
            "operator-restarts-on-config-change",
            "Cilium operator (configuration)",
            "misbehaviour: the operator reads cilium-config only at start (FACTS.md); here a change exits it",
            "the operator exits when cilium-config changes, so it restarts with the new setting",
            "every Cilium agent is restarted and the operator is not",
        ),
        Defect(
            "router-ignores-connection-hold-time",
            "router (RouterOS BGP connection)",
            "misconfiguration: the connection's hold-time not applied, RouterOS 7's 3m default in force",
            "with 1.13's GoBGP defaults (hold 90 s) a silent peer's paths stay 90 s, not the topology's 9 s",
            "the router withdraws that node's path to the LB IP within the hold time",
            topology="lab-routeros.yaml",
            shortcuts=(),  # the nodes' own timers, which the short-timers shortcut would replace
            waits=(("sessions_established", 40.0),),  # 1.13's first dial, 5-10 s after the policy
        ),
        Defect(
            "lb-traffic-served-only-on-backend-node",
            "Cilium agent (service datapath)",
            "regression shape: LB traffic handled as externalTrafficPolicy Local on a Cluster service",
            "nodes without a local nginx pod drop the LB IP's traffic they are handed",
            "requests keep succeeding through the other peering nodes",
        ),
        Defect(
            "lb-ip-never-withdrawn",
            "Cilium agent (BGP reconcile)",
            "regression shape of a stale advertisement: announced /32s are never withdrawn",
            "a deleted service's LB IP stays announced by every peering node",
            "the LB IP's route leaves the router within the hold time",
        ),
        Defect(
            "graceful-restart-not-advertised",
            "Cilium agent (its GoBGP neighbor configuration)",
            "#31346 (graceful restart not keeping routes on the router)",
            "`cilium bgp peers` shows graceful restart on, but the speaker never offers the capability",
            "the router keeps every path to the LB IP until the agent is back",
            topology="lab-bgpv2.yaml",
        ),
        Defect(
            "service-datapath-torn-down-on-agent-stop",
            "Cilium agent (service datapath)",
            "regression shape: the agent empties its service map on shutdown (Cilium's own outlives it)",
            "while an agent restarts, its node drops the LB traffic the router still sends it",
            "no request fails",
            topology="lab-bgpv2.yaml",
        ),
        Defect(
            "lb-ip-not-readvertised-after-restart",
            "Cilium agent (BGP reconcile)",
            "#24069 (a route not re-advertised after an agent restart; there the PodCIDR)",
            "an agent that restarted announces no LoadBalancer IP again",
            "the node's session is established again and its path to the LB IP comes back",
        ),
        Defect(
            "router-boots-without-saved-peers",
            "router (FRR's startup configuration)",
            "misconfiguration: `write memory` saves per-daemon files while FRR boots the integrated "
            'frr.conf (FRR\'s user guide, "Config Methods"), so neighbors added at runtime are lost',
            "the restarted router comes back without the BGP neighbors added since it booted",
            "every session with the router is established again and the LB IP's paths come back",
        ),
        Defect(
            "agent-rbac-lags-upgrade",
            "Cilium chart (the agent's ClusterRole during a rolling upgrade)",
            "#45802, #45829 (1.18 to 1.19 rolling upgrade RBAC, fixed in patch releases)",
            "agents of the newer release are forbidden to list their BGP resources and never get ready",
            "after each minor every agent and the operator run it and every peering node's session and "
            "path to the LB IP come back",
            topology="lab-upgrade.yaml",
        ),
        Defect(
            "agent-ceases-sessions-on-shutdown",
            "Cilium agent (its BGP speaker's shutdown)",
            "#31346 (the router logs Cease/Peer De-configured as the agent is deleted, and drops its routes)",
            "an agent going down sends a Cease despite graceful restart, so the router withdraws its paths",
            "the router keeps a path to the LB IP and no request fails throughout",
            topology="lab-upgrade.yaml",
        ),
        Defect(
            "agent-keeps-v1-instance-after-migration",
            "Cilium agent (BGP control plane managers)",
            "regression shape: a node the v1 policy no longer selects keeps its v1 instance",
            "a node moved to BGPv2 goes on running its v1 BGP instance and never reports BGPv2 status",
            "every peering node runs BGPv2 with its session established and its path to the LB IP",
            topology="lab-migrate.yaml",
        ),
        Defect(
            "operator-bgp-crd-not-structural",
            "Cilium operator (its embedded CRDs)",
            "regression shape of a generated CRD the API server rejects (a schema without its root type)",
            "the API server refuses the operator's BGP CRDs; the operator exits fatal and crash-loops",
            "every Cilium agent and the operator are restarted",
            topology="lab-bgpv2.yaml",
        ),
        Defect(
            "operator-registers-policy-crd-unserved",
            "Cilium operator (CRD registration)",
            "regression shape of a CRD version turned off (v2alpha1 policy deprecated in 1.18, FACTS.md)",
            "the operator creates the peering policy CRD with its only version not served",
            "the BGP configuration resources are served",
        ),
        Defect(
            "node-config-disables-bgp",
            "k3s (a leftover manifest in its auto-deploy directory), read by the Cilium agent",
            "misconfiguration: a CiliumNodeConfig left from earlier work overrides cilium-config on one node",
            "a CiliumNodeConfig sets enable-bgp-control-plane false on the last peering node (by name)",
            "the Cilium configuration enables the BGP control plane",
        ),
        Defect(
            "router-never-originates-default",
            "router (RouterOS BGP output)",
            "misbehaviour: a connection with output.default-originate=always sends no default route",
            "the router shows the setting and never sends 0.0.0.0/0",
            "every labelled node has received the default route from the router",
            topology="lab-routeros.yaml",
        ),
        Defect(
            "peers-count-routes-not-established",
            "Cilium agent (`cilium bgp peers`)",
            "#39861 (bgp peers counting advertised routes on a session not established)",
            "a session not yet established reports the routes the node would advertise",
            "every labelled node has a session with the router in state active",
        ),
    )
}

_switches = Switches("--lab-defect", "defect", CATALOGUE)
checked = _switches.checked
activate = _switches.activate
active = _switches.active
active_names = _switches.active_names


def first_peering_node(nodes: Iterable[Node]) -> str:
    """The node the one-node defects keep working on: the first peering node by name."""
    return min(node.name for node in nodes)


def markdown_table() -> str:
    """The catalogue as README.md shows it (`bgpconform lab defects --markdown`)."""
    rows = [
        "| defect | where it lives | source | the Then step that catches it |",
        "| --- | --- | --- | --- |",
    ]
    for defect in CATALOGUE.values():
        where = defect.lives_in
        if defect.topology != "lab.yaml":
            where += f" (on `topologies/{defect.topology}`)"
        rows.append(f"| `{defect.name}`: {defect.summary} | {where} | {defect.source} | {defect.caught_by} |")
    return "\n".join(rows) + "\n"
