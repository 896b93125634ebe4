"""Steps of the BGP control plane and peering stages."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from pytest_bdd import given, then, when

from bgpconform import checks, observe
from bgpconform.bgp_states import SessionState
from bgpconform.cilium import expectations
from bgpconform.cilium.labels import AGENT_SELECTOR, OPERATOR_SELECTOR
from bgpconform.evidence import Evidence
from bgpconform.expect import expect, expect_check
from bgpconform.stage import Stage
from bgpconform.waiting import consistently, wait_for, wait_until
from bgpconform.walkthrough.machine import BGP_CONFIG_KEY, StageMachine


@given("Cilium is installed with the BGP control plane disabled")
def cilium_without_bgp(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.bring_to(Stage.CILIUM)


@when("the BGP control plane is enabled in the Cilium configuration", target_fixture="before_enable")
def enable_bgp(walkthrough: StageMachine, evidence: Evidence) -> dict[str, dict[str, int]]:
    kube = walkthrough.target.kube
    before = {
        "agents": {p.name: p.restarts for p in observe.pods(kube, "kube-system", AGENT_SELECTOR)},
        "operators": {p.name: p.restarts for p in observe.pods(kube, "kube-system", OPERATOR_SELECTOR)},
    }
    walkthrough.start_enable_bgp()
    return before


OPERATOR_HOLD = 3.0  # seconds the operator must stay as it was once the agents have restarted


@then("every Cilium agent is restarted and the operator is not")
def agents_restarted(
    walkthrough: StageMachine, evidence: Evidence, before_enable: dict[str, dict[str, int]]
) -> None:
    """The agents replaced on every node; the operator's pods the same, none restarted, and held so a
    while: an operator that restarts on its own would register the policy resource too early."""
    kube = walkthrough.target.kube
    agents = walkthrough.wait_agents_replaced(frozenset(before_enable["agents"]))
    operators = consistently(
        lambda: observe.pods(kube, "kube-system", OPERATOR_SELECTOR),
        checks.PodsUntouched("the Cilium operator", before_enable["operators"]),
        duration=OPERATOR_HOLD,
    ).value
    evidence.table("kubectl get pods -n kube-system", observe.pod_table([*agents, *operators]))


@then("every Cilium agent and the operator are restarted", target_fixture="restarted_operator")
def agents_and_operator_restarted(
    walkthrough: StageMachine, evidence: Evidence, before_enable: dict[str, dict[str, int]]
) -> list[str]:
    """cilium-cli v0.18.7+ deletes the operator pods with the agents' (FACTS.md): every one replaced by
    a new operator that runs and is ready, which it is only once it has registered its CRDs."""
    agents = walkthrough.wait_agents_replaced(frozenset(before_enable["agents"]))
    replaced = frozenset(before_enable["operators"])
    operators = walkthrough.wait_operators_replaced(replaced)
    evidence.table("kubectl get pods -n kube-system", observe.pod_table([*agents, *operators]))
    return sorted(replaced)


def _api_resources_evidence(walkthrough: StageMachine, evidence: Evidence) -> None:
    for group_version in sorted({r.api_version for r in walkthrough.bgp_resources}):
        served = [r["name"] for r in walkthrough.target.kube.api_resources(group_version)]
        evidence.text(
            f"kubectl api-resources --api-group=cilium.io ({group_version})", "\n".join(sorted(served))
        )


@then("the BGP configuration resources are not served")
def policy_not_served(walkthrough: StageMachine, evidence: Evidence) -> None:
    """Every resource the topology's BGP API is configured with (`bgp_api`): the peering policy on v1,
    the cluster config, peer config, advertisement and node config on BGPv2."""
    _api_resources_evidence(walkthrough, evidence)
    served = walkthrough.served_bgp_resources()
    wanted = [r.plural for r in walkthrough.bgp_resources]
    expect(not served, f"none of {', '.join(wanted)} served", f"served: {', '.join(served)}")


@then("the Cilium agents are not ready and log that the BGP resources are missing")
def agents_waiting(walkthrough: StageMachine, evidence: Evidence) -> None:
    expected = expectations.agent_missing_policy_crd(str(walkthrough.topology.cluster.cilium_version))
    cilium = walkthrough.target.cilium
    waited = wait_for(
        lambda: {
            pod["metadata"]["name"]: cilium.logs(pod["metadata"]["name"], "cilium-agent")
            for pod in cilium.agent_pods()
        },
        lambda logs: bool(logs) and all(expected in text for text in logs.values()),
        expected=f"every agent's log to contain: {expected}",
        timeout=walkthrough.topology.waits.crd_registered,
        describe=lambda logs: {name: text.splitlines()[-1:] for name, text in logs.items()},
    )
    first = next(iter(waited.value.items()))
    evidence.text(
        f"kubectl logs -n kube-system {first[0]} | tail -1",
        next(line for line in reversed(first[1].splitlines()) if expected in line),
    )
    agents = observe.pods(walkthrough.target.kube, "kube-system", AGENT_SELECTOR)
    evidence.table("kubectl get pods -n kube-system -l k8s-app=cilium", observe.pod_table(agents))
    ready = [a.name for a in agents if a.running_and_ready]
    expect(not ready, "no agent ready while the BGP CRDs are missing", observe.pod_table(agents))


@when("the Cilium operator is restarted", target_fixture="restarted_operator")
def restart_operator(walkthrough: StageMachine, evidence: Evidence) -> list[str]:
    return walkthrough.restart_operator()


@then("the operator logs that it created the BGP configuration resources")
def operator_created_crd(
    walkthrough: StageMachine, evidence: Evidence, restarted_operator: list[str]
) -> None:
    cilium = walkthrough.target.cilium
    topology = walkthrough.topology
    wanted = expectations.operator_created_bgp_crd(str(topology.cluster.cilium_version), topology.bgp_api)

    def crd_lines() -> dict[str, list[str]]:
        return {
            name: [line for line in cilium.logs(name, "cilium-operator").splitlines() if "CRD" in line]
            for name in (p["metadata"]["name"] for p in cilium.operator_pods())
            if name not in restarted_operator
        }

    logged = wait_for(
        crd_lines,
        lambda logs: any(wanted in line for lines in logs.values() for line in lines),
        expected=f"a new operator's log to contain: {wanted}",
        timeout=walkthrough.waits.crd_registered,
        describe=lambda logs: logs or f"no operator pod other than {restarted_operator}",
    ).value
    name, lines = next((n, lines) for n, lines in logged.items() if any(wanted in line for line in lines))
    evidence.text(f"kubectl logs -n kube-system {name} | grep CRD", "\n".join(lines))


@then("the BGP configuration resources are served")
def policy_served(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.wait_policy_resource()
    _api_resources_evidence(walkthrough, evidence)


@then("every Cilium agent is ready")
def agents_ready(walkthrough: StageMachine, evidence: Evidence) -> None:
    agents = walkthrough.wait_agents_ready()
    evidence.table("kubectl get pods -n kube-system -l k8s-app=cilium", observe.pod_table(agents))
    walkthrough.reached_at_least(Stage.BGP_READY)  # the scenario has walked the whole stage


# -- peering ---------------------------------------------------------------------------------------
@given("the BGP control plane is enabled and ready")
def bgp_ready(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.bring_to(Stage.BGP_READY)


@given("a cluster whose BGP control plane is enabled and ready")
def bgp_ready_at_least(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.bring_to_at_least(Stage.BGP_READY)


@then("the Cilium configuration enables the BGP control plane")
def bgp_enabled_in_config(walkthrough: StageMachine, evidence: Evidence) -> None:
    """On every peering node: cilium-config, and no CiliumNodeConfig turning it off there."""
    settings = walkthrough.bgp_setting_per_node()
    evidence.json(
        f"{BGP_CONFIG_KEY} per peering node (cilium config view, CiliumNodeConfigs)",
        {node: {"value": s.value, "from": s.source} for node, s in settings.items()},
    )
    expect_check(checks.SettingOnEveryNode(BGP_CONFIG_KEY, "true"), settings)


@when("the BGP configuration for nodes with the policy label is applied")
def apply_policy(walkthrough: StageMachine, evidence: Evidence) -> None:
    """The configuration as applied, so the report shows the API used and any timers the harness set
    (1.14+ and BGPv2: the topology's)."""
    for applied in walkthrough.apply_policy():
        evidence.json(
            f"{applied.get('kind')} {applied['metadata']['name']} spec (as applied)", applied.get("spec")
        )
    walkthrough.reached(Stage.BGP_READY)  # not yet peering: the stage machine must not assume it


@when("the peering nodes are given the policy label")
def label_nodes(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.label_peering_nodes()


UNLABELLED_HOLD = 3.0  # seconds; an agent lists a peer as soon as its policy selects the node


@then("every node without the policy label has no BGP session")
def unlabelled_no_session(walkthrough: StageMachine, evidence: Evidence) -> None:
    """Judged once the labelled nodes' sessions are up (before, no session could exist anywhere yet),
    and held for a while: a single look could come before a stray agent lists its peer."""
    walkthrough.wait_sessions(
        SessionState.ESTABLISHED, Stage.PEERING, "router configured -> every session established"
    )
    peering = {n.name for n in walkthrough.topology.bgp_nodes}
    unlabelled = frozenset(n.name for n in walkthrough.topology.nodes if n.name not in peering)
    held = consistently(
        walkthrough.target.cilium.bgp_peers, checks.NoBgpSession(unlabelled), duration=UNLABELLED_HOLD
    )
    evidence.table("cilium bgp peers", observe.bgp_peers_table(held.value))


ACTIVE_HOLD = 2.0  # seconds


@then("every labelled node has a session with the router in state active")
def sessions_active(walkthrough: StageMachine, evidence: Evidence) -> None:
    """Active, and counting no route (walkthrough: `active ... 0 0`); held a while, as an agent
    announces its pod CIDR to its speaker just after it adds the neighbor."""
    walkthrough.wait_sessions(SessionState.ACTIVE, Stage.PEERING, "policy applied -> every session active")
    nodes = frozenset(node.name for node in walkthrough.topology.bgp_nodes)
    peers = consistently(
        walkthrough.target.cilium.bgp_peers, checks.NothingCountedOffSession(nodes), duration=ACTIVE_HOLD
    ).value
    evidence.table("cilium bgp peers", observe.bgp_peers_table(peers))


@when("the router is configured to peer with every labelled node")
def configure_router(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.configure_router()


@then("every labelled node's session with the router is established on both sides")
def sessions_established(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.wait_sessions(
        SessionState.ESTABLISHED, Stage.PEERING, "router configured -> every session established"
    )
    walkthrough.reached(Stage.PEERING)
    evidence.table("cilium bgp peers", observe.bgp_peers_table(walkthrough.target.cilium.bgp_peers()))
    sessions = walkthrough.target.router.sessions()
    evidence.table("router: BGP sessions", observe.sessions_table(sessions))
    command, printed = walkthrough.target.router.show_sessions()
    evidence.text(f"router: {command}", printed)
    established = checks.RouterSessionsEstablished(
        frozenset(n.address for n in walkthrough.topology.bgp_nodes)
    )
    expect_check(established, {s.peer: s.state for s in sessions})
    evidence.count("bgp_sessions_established", sum(s.state is SessionState.ESTABLISHED for s in sessions))


def _ipv4_counts(walkthrough: StageMachine, which: str) -> dict[str, int]:
    """Per peering node, the IPv4 prefixes it has `received` from or `advertised` to the router."""
    router = str(walkthrough.topology.router.address)
    per_node = walkthrough.target.cilium.bgp_peers()
    counts = {}
    for node in walkthrough.topology.bgp_nodes:
        peer = next((p for p in per_node.get(node.name, []) if p.peer_address == router), None)
        families = peer.families if peer else ()
        counts[node.name] = sum(getattr(f, which) for f in families if f.afi == "ipv4")
    return counts


def _wait_counts(walkthrough: StageMachine, which: str, what: str) -> dict[str, int]:
    return wait_for(
        lambda: _ipv4_counts(walkthrough, which),
        lambda counts: all(count >= 1 for count in counts.values()),
        expected=f"every labelled node to have {what}",
        timeout=walkthrough.topology.waits.routes,
    ).value


DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")


@then("every labelled node has received the default route from the router")
def default_route_received(walkthrough: StageMachine, evidence: Evidence) -> None:
    """By prefix at the router (what it sends each node, its default route among them) and by count
    on each node (`cilium bgp peers` of 1.13 counts routes; it has no per-prefix view)."""
    router = walkthrough.target.router
    peers = [node.address for node in walkthrough.topology.bgp_nodes]
    sent = wait_until(
        lambda: {peer: router.advertised_to(peer) for peer in peers},
        checks.PrefixSentToEach(DEFAULT_ROUTE, frozenset(peers)),
        timeout=walkthrough.topology.waits.routes,
    ).value
    evidence.json("router: prefixes sent per node", {str(p): sorted(map(str, s)) for p, s in sent.items()})
    counts = _wait_counts(walkthrough, "received", "received a prefix from the router")
    evidence.json("IPv4 prefixes received per node", counts)


@then("every labelled node advertises its pod CIDR")
def pod_cidr_advertised(walkthrough: StageMachine, evidence: Evidence) -> None:
    """Each node's own pod CIDR (as the cluster assigned it) as the router received it from that node,
    and a count on the node."""
    owners = _pod_cidr_owners(walkthrough, evidence)
    received = wait_until(
        lambda: walkthrough.router_next_hops(list(owners)),
        checks.EachPrefixFromItsNode(owners),
        timeout=walkthrough.topology.waits.routes,
    ).value
    evidence.json(
        "router: next hops per pod CIDR", {str(p): sorted(map(str, h)) for p, h in received.items()}
    )
    counts = _wait_counts(walkthrough, "advertised", "advertised a prefix to the router")
    evidence.json("IPv4 prefixes advertised per node", counts)


def _pod_cidr_owners(walkthrough: StageMachine, evidence: Evidence) -> dict[IPv4Network, IPv4Address]:
    """Each peering node's pod CIDR, read from the cluster (Cilium's IPAM decides it), to its address."""
    assigned = walkthrough.pod_cidrs()
    evidence.json("pod CIDR per peering node", {n: f"{c} (from {src})" for n, (c, src) in assigned.items()})
    return {assigned[node.name][0]: node.address for node in walkthrough.topology.bgp_nodes}


@then("the router's table holds every labelled node's pod CIDR through that node")
def router_has_pod_cidrs(walkthrough: StageMachine, evidence: Evidence) -> None:
    router = walkthrough.target.router
    owners = _pod_cidr_owners(walkthrough, evidence)
    prefixes = list(owners)
    each_via_its_node = checks.RoutesViaNodes(
        {cidr: frozenset({address}) for cidr, address in owners.items()}
    )
    waited = wait_until(
        lambda: walkthrough.router_next_hops(prefixes),
        each_via_its_node,
        timeout=walkthrough.topology.waits.routes,
    )
    walkthrough.evidence.timing(
        Stage.PEERING.label, "session established -> pod CIDRs at the router", waited.elapsed
    )
    evidence.table("router: routes", observe.routes_table(observe.router_routes(router, prefixes)))
    command, printed = router.show_routes()
    evidence.text(f"router: {command}", printed)
    evidence.count("pod_cidr_routes_at_router", sum(len(hops) for hops in waited.value.values()))


@then("every labelled node's BGP node config reports its session with the router established")
def node_config_reports_sessions(walkthrough: StageMachine, evidence: Evidence) -> None:
    """1.17+ on BGPv2: `CiliumBGPNodeConfig.status.bgpInstances[].peers[]` of each labelled node has
    the router with `peeringState: established` (FACTS.md, "Cilium: BGPv2", PR #33411)."""
    waited = wait_until(
        walkthrough.node_config_peer_states,
        checks.SessionsInState(
            frozenset(node.name for node in walkthrough.topology.bgp_nodes), SessionState.ESTABLISHED
        ),
        timeout=walkthrough.topology.waits.routes + NODE_STATUS_PERIOD,
    )
    evidence.json("CiliumBGPNodeConfig status: the router's peeringState per node", waited.value)


NODE_STATUS_PERIOD = 5.0  # seconds between the agent's status writes (FACTS.md)
