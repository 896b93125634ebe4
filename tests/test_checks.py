"""The checks judge observations shaped as the walkthrough prints them, and name what broke a promise."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from bgpconform import checks
from bgpconform.bgp_states import SessionState
from bgpconform.cilium.bgp_peers import BgpPeer, PeerFamily
from bgpconform.observe import NodeView, PodView

WORKERS = ("k3s-worker-node-01", "k3s-worker-node-02", "k3s-worker-node-03")
CONTROL_PLANE = "k3s-control-plane-01"
ALL_NODES = frozenset((*WORKERS, CONTROL_PLANE))
NOT_INITIALIZED = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady"


def node(name: str, ready: bool) -> NodeView:
    message = "kubelet is posting ready status" if ready else NOT_INITIALIZED
    reason = "KubeletReady" if ready else "KubeletNotReady"
    return NodeView(name, ready, reason, message, "<none>", "v1.27.3+k3s1", {})


def pod(name: str, ready: str, status: str) -> PodView:
    return PodView("kube-system", name, ready, status, 0, "k3s-worker-node-01", "10.0.0.5", {})


def test_every_node_ready_holds_once_kubectl_shows_all_ready() -> None:
    """The walkthrough after `cilium install`: every node Ready."""
    ready = [node(name, True) for name in sorted(ALL_NODES)]
    assert checks.EveryNodeReady(ALL_NODES)(ready).holds


def test_every_node_ready_fails_before_the_cni_naming_each_node() -> None:
    """The walkthrough before a CNI: all four nodes NotReady."""
    finding = checks.EveryNodeReady(ALL_NODES)([node(name, False) for name in sorted(ALL_NODES)])
    assert not finding.holds
    for name in ALL_NODES:
        assert f"{name}: NotReady (KubeletNotReady" in finding.observed


def test_every_node_ready_fails_on_a_node_that_never_registered_or_an_extra_one_not_ready() -> None:
    three = [node(name, True) for name in WORKERS]
    missing = checks.EveryNodeReady(ALL_NODES)(three)
    assert not missing.holds
    assert missing.observed == f"{CONTROL_PLANE}: not registered"
    extra = checks.EveryNodeReady(frozenset(WORKERS))([*three, node("spare-node", False)])
    assert not extra.holds
    assert "spare-node: NotReady" in extra.observed
    assert checks.EveryNodeReady(frozenset(WORKERS), named_only=True)(
        [*three, node("spare-node", False)]
    ).holds
    named = checks.EveryNodeReady(frozenset(WORKERS), named_only=True)([node(WORKERS[0], False)])
    assert not named.holds
    assert named.observed.startswith("k3s-worker-node-02: not registered")


def test_every_node_registered_holds_for_not_ready_nodes() -> None:
    registered = checks.EveryNodeRegistered(ALL_NODES)
    assert registered([node(name, False) for name in ALL_NODES]).holds
    assert not registered([node(WORKERS[0], True)]).holds


def test_pods_running_and_ready_needs_a_pod_and_every_container_ready() -> None:
    agents = checks.PodsRunningAndReady("every agent")
    assert agents([pod("cilium-2kv6t", "1/1", "Running"), pod("cilium-7xcmb", "1/1", "Running")]).holds
    waiting = agents([pod("cilium-2kv6t", "0/1", "Running")])
    assert not waiting.holds
    assert "cilium-2kv6t" in waiting.observed
    assert not agents([pod("cilium-2kv6t", "0/1", "Init:0/6")]).holds
    nothing = agents([])
    assert (nothing.holds, nothing.observed) == (False, "no such pod")


def test_sessions_in_state_active_then_established_as_cilium_bgp_peers_shows_them() -> None:
    """`cilium bgp peers` in the walkthrough: active before the router is configured, then established."""
    workers = frozenset(WORKERS)
    active = dict.fromkeys(WORKERS, "active")
    assert checks.SessionsInState(workers, SessionState.ACTIVE)(active).holds
    not_yet = checks.SessionsInState(workers, SessionState.ESTABLISHED)(active)
    assert not not_yet.holds
    assert not_yet.observed == repr(active)
    two = {WORKERS[0]: "established", WORKERS[1]: "established"}
    one_missing = checks.SessionsInState(workers, SessionState.ESTABLISHED)(two)
    assert not one_missing.holds
    assert "k3s-worker-node-03" not in one_missing.observed  # no session: the agent lists no peer


def test_router_sessions_established_names_the_peers_that_are_not() -> None:
    """The router's `session/print` in the walkthrough: three sessions with flag E."""
    peers = frozenset(IPv4Address(f"192.168.1.20{i}") for i in (1, 2, 3))
    established = dict.fromkeys(peers, SessionState.ESTABLISHED)
    assert checks.RouterSessionsEstablished(peers)(established).holds
    one_down = {**established, IPv4Address("192.168.1.203"): SessionState.ACTIVE}
    finding = checks.RouterSessionsEstablished(peers)(one_down)
    assert not finding.holds
    assert finding.observed == "192.168.1.203: active"


def test_routes_via_nodes_wants_exactly_the_announcing_nodes() -> None:
    """The router's table in the walkthrough: 172.198.1.193/32 via .201, .202 and .203."""
    lb = IPv4Network("172.198.1.193/32")
    nodes = frozenset(IPv4Address(f"192.168.1.20{i}") for i in (1, 2, 3))
    check = checks.RoutesViaNodes({lb: nodes})
    assert check({lb: set(nodes)}).holds
    only_one = check({lb: {IPv4Address("192.168.1.201")}})
    assert not only_one.holds
    assert "192.168.1.201" in only_one.observed
    assert not check({lb: {*nodes, IPv4Address("192.168.1.10")}}).holds  # a node that should not announce
    assert not check({}).holds


def test_routes_via_nodes_each_pod_cidr_through_its_own_node() -> None:
    """Pod CIDRs as the walkthrough routes them: 10.136.1.0/24 via .201, 10.136.2.0/24 via .203
    and 10.136.3.0/24 via .202."""
    table = {
        IPv4Network("10.136.1.0/24"): {IPv4Address("192.168.1.201")},
        IPv4Network("10.136.2.0/24"): {IPv4Address("192.168.1.203")},
        IPv4Network("10.136.3.0/24"): {IPv4Address("192.168.1.202")},
    }
    check = checks.RoutesViaNodes({prefix: frozenset(hops) for prefix, hops in table.items()})
    assert check(table).holds
    swapped = {**table, IPv4Network("10.136.2.0/24"): {IPv4Address("192.168.1.202")}}
    assert not check(swapped).holds


def test_pool_conflict_reads_the_newest_condition_of_its_type() -> None:
    """1.13-1.14 append a new condition rather than update one (FACTS.md, LB IPAM): the last one counts."""
    pool = {
        "status": {
            "conditions": [
                {"type": "io.cilium/conflict", "status": "False", "reason": "resolved"},
                {"type": "io.cilium/ips-total", "status": "Unknown", "message": "126"},
                {"type": "io.cilium/conflict", "status": "True", "reason": "cidr_overlap"},
            ]
        }
    }
    assert checks.PoolConflict("second", "io.cilium/conflict", "True")(pool).holds
    assert not checks.PoolConflict("second", "io.cilium/conflict", "False")(pool).holds
    wrong_version = checks.PoolConflict("second", "cilium.io/PoolConflict", "True")(pool)
    assert (wrong_version.holds, wrong_version.observed) == (False, "no such condition")


def test_operator_replicas_ready_as_many_as_the_deployment_asks() -> None:
    """Helm installs two operator replicas, cilium-cli one on a small cluster (FACTS.md)."""
    helm = {"spec": {"replicas": 2}}
    two = [pod("cilium-operator-5d8f-a", "1/1", "Running"), pod("cilium-operator-5d8f-b", "1/1", "Running")]
    assert checks.OperatorReplicasReady.of_deployment(helm)(two).holds
    one_pending = [two[0], pod("cilium-operator-5d8f-b", "0/1", "Pending")]
    finding = checks.OperatorReplicasReady.of_deployment(helm)(one_pending)
    assert not finding.holds
    assert finding.observed.startswith("1 ready of 2")
    assert checks.OperatorReplicasReady.of_deployment({"spec": {}})(two[:1]).holds  # replicas default 1
    assert not checks.OperatorReplicasReady.of_deployment({"spec": {"replicas": 0}})([]).holds
    assert not checks.OperatorReplicasReady.of_deployment(None)(two).holds


def test_no_bgp_session_names_the_stray_node() -> None:
    from bgpconform.cilium.bgp_peers import parse_agent_json

    stray = parse_agent_json(
        '[{"local-asn": 64512, "peer-asn": 64512, "peer-address": "192.168.1.1", "session-state": "active"}]'
    )
    check = checks.NoBgpSession(frozenset({CONTROL_PLANE}))
    assert check({CONTROL_PLANE: [], WORKERS[0]: stray}).holds  # a labelled node's peers are not judged
    finding = check({CONTROL_PLANE: stray})
    assert not finding.holds
    assert CONTROL_PLANE in finding.observed
    assert "192.168.1.1" in finding.observed


def test_prefix_sent_to_each_wants_the_default_route_per_node() -> None:
    """The walkthrough's `/routing/bgp/advertisements`: dst=0.0.0.0/0 to each of the three peers."""
    default = IPv4Network("0.0.0.0/0")
    peers = frozenset(IPv4Address(f"192.168.1.20{i}") for i in (1, 2, 3))
    check = checks.PrefixSentToEach(default, peers)
    assert check({peer: [default] for peer in peers}).holds
    pod_cidrs_only = {peer: [IPv4Network("10.136.1.0/24")] for peer in peers}  # eBGP: others' pod CIDRs
    finding = check(pod_cidrs_only)
    assert not finding.holds
    assert finding.observed.startswith("not sent to ['192.168.1.201', '192.168.1.202', '192.168.1.203']")


def test_each_prefix_from_its_node_tolerates_other_paths_but_not_a_missing_one() -> None:
    owners = {
        IPv4Network("10.136.1.0/24"): IPv4Address("192.168.1.201"),
        IPv4Network("10.136.3.0/24"): IPv4Address("192.168.1.202"),
    }
    check = checks.EachPrefixFromItsNode(owners)
    both = {prefix: {node} for prefix, node in owners.items()}
    assert check(both).holds
    assert check(
        {**both, IPv4Network("10.136.1.0/24"): {IPv4Address("192.168.1.201"), IPv4Address("192.168.1.9")}}
    ).holds
    finding = check({IPv4Network("10.136.1.0/24"): {IPv4Address("192.168.1.201")}})
    assert not finding.holds
    assert "10.136.3.0/24" in finding.observed


def test_agent_on_every_node_names_the_nodes_without_a_ready_agent() -> None:
    agents = [pod("cilium-2kv6t", "1/1", "Running"), pod("cilium-7xcmb", "0/1", "Running")]
    on_first = checks.AgentOnEveryNode(frozenset({"k3s-worker-node-01"}))
    assert on_first(agents).holds
    finding = checks.AgentOnEveryNode(frozenset({"k3s-worker-node-01", "k3s-worker-node-02"}))(agents)
    assert not finding.holds
    assert finding.observed.startswith("none ready on ['k3s-worker-node-02']")


def test_pods_running_and_ready_wants_one_in_each_named_namespace() -> None:
    coredns = PodView("kube-system", "coredns-77ccd57875-5xd2t", "1/1", "Running", 0, "n1", "10.0.0.7", {})
    both = checks.PodsRunningAndReady(
        "CoreDNS and local-path", frozenset({"kube-system", "local-path-storage"})
    )
    assert not both([coredns]).holds  # local-path-provisioner missing
    storage = PodView(
        "local-path-storage", "local-path-provisioner-1", "1/1", "Running", 0, "n1", "10.0.0.8", {}
    )
    assert both([coredns, storage]).holds


def _peer(state: str, received: int, advertised: int) -> BgpPeer:
    return BgpPeer.from_facts(
        local_asn=64512,
        peer_asn=64512,
        peer_address="192.168.1.1",
        session_state=state,
        uptime_seconds=5600.0 if state == "established" else None,
        families=[
            PeerFamily("ipv4", "unicast", received, received, advertised),
            PeerFamily("ipv6", "unicast"),
        ],
    )


def test_nothing_counted_off_session_holds_for_the_walkthroughs_active_table() -> None:
    """`cilium bgp peers` before the router knows the nodes: active, 0 received, 0 advertised; once
    established the walkthrough shows 1 and 2, which is no concern of this check."""
    check = checks.NothingCountedOffSession(frozenset(WORKERS))
    assert check({name: [_peer("active", 0, 0)] for name in WORKERS}).holds
    assert check({name: [_peer("established", 1, 2)] for name in WORKERS}).holds
    counted = {**{name: [_peer("active", 0, 0)] for name in WORKERS}, WORKERS[1]: [_peer("active", 0, 1)]}
    finding = check(counted)
    assert not finding.holds
    assert WORKERS[1] in finding.observed
    assert WORKERS[0] not in finding.observed  # only the node that counts is shown


def test_agents_replaced_wants_a_new_running_agent_per_node_and_no_old_one() -> None:
    """The walkthrough after `cilium config set`: new cilium-xxxxx pods, the old ones gone."""
    nodes = frozenset(WORKERS)
    old = frozenset({"cilium-4xk2p", "cilium-9qv7d", "cilium-h2rtm"})
    check = checks.AgentsReplaced(old, nodes)

    def agent(name: str, node_name: str, status: str = "Running") -> PodView:
        return PodView("kube-system", name, "0/1", status, 0, node_name, "192.168.1.2", {})

    new = [agent(f"cilium-new{i}", name) for i, name in enumerate(WORKERS)]
    assert check(new).holds
    assert not check(new[:2]).holds  # one node without an agent
    initialising = [*new[:2], agent("cilium-new2", WORKERS[2], "Init:1/6")]
    assert not check(initialising).holds
    kept = check([*new, agent("cilium-4xk2p", WORKERS[0])])
    assert not kept.holds
    assert "cilium-4xk2p" in kept.observed


def test_pods_untouched_fails_on_a_restart_in_place_or_a_new_pod() -> None:
    check = checks.PodsUntouched("the Cilium operator", {"cilium-operator-788c7d7585-5bsnn": 0})
    same = PodView("kube-system", "cilium-operator-788c7d7585-5bsnn", "1/1", "Running", 0, WORKERS[0], "", {})
    assert check([same]).holds
    restarted = check([replace(same, restarts=1)])
    assert not restarted.holds
    assert "cilium-operator-788c7d7585-5bsnn': 1" in restarted.observed
    assert not check([replace(same, name="cilium-operator-788c7d7585-xq2lw")]).holds


def test_setting_on_every_node_names_the_node_and_the_object_that_overrides_it() -> None:
    from bgpconform.cilium.node_config import Setting

    check = checks.SettingOnEveryNode("enable-bgp-control-plane", "true")
    on = Setting("true", "ConfigMap kube-system/cilium-config")
    assert check({name: on for name in WORKERS}).holds
    off = Setting("false", "CiliumNodeConfig kube-system/bgp-rollout")
    finding = check({WORKERS[0]: on, WORKERS[1]: off})
    assert not finding.holds
    assert (
        "k3s-worker-node-02': \"'false' from CiliumNodeConfig kube-system/bgp-rollout\"" in finding.observed
    )
    assert not check({}).holds


def test_routes_via_nodes_over_hundreds_of_prefixes_speaks_in_counts() -> None:
    """The scale check's 500 LB IPs from 48 nodes: a failure names how many are short and the first
    few with what they lack, not 24,000 addresses."""
    nodes = frozenset(IPv4Address(f"192.168.1.{11 + i}") for i in range(48))
    prefixes = [IPv4Network(f"172.199.{i // 250}.{i % 250 + 1}/32") for i in range(500)]
    check = checks.RoutesViaNodes(dict.fromkeys(prefixes, nodes))
    assert check.expected == "each of 500 prefixes at the router via each of its 48 announcing nodes"
    table = {prefix: set(nodes) for prefix in prefixes}
    assert check(table).holds
    lone = IPv4Address("192.168.1.11")
    short = {**table, prefixes[7]: {lone}, prefixes[9]: set()}
    finding = check(short)
    assert not finding.holds
    assert finding.observed.startswith(
        "2 prefixes short, the first: {'172.199.0.8/32': \"1 paths, none via ['192.168.1.12', "
    )
    assert "'172.199.0.10/32': \"0 paths, none via ['192.168.1.11', " in finding.observed
    assert len(finding.observed) < 1000
