"""The lab's BGPv2: the operator's node configs, the agent's decision and its 1.17 status, as pure
functions over objects shaped as FACTS.md ("BGPv2 in brief") describes them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bgpconform.bgp_states import SessionState
from bgpconform.lab.cilium.bgp_control import NeighborTimers, node_bgp_config_v2
from bgpconform.lab.cilium.bgp_node_configs import (
    CONFLICTING_CLUSTER_CONFIG,
    MISSING_PEER_CONFIGS,
    NO_MATCHING_NODE,
    desired,
)
from bgpconform.lab.cilium.node_status import node_status
from bgpconform.lab.gobgp import SpeakerPeer

ROUTER = "192.168.1.1"


def _node(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def _cluster_config(
    name: str, selector: dict[str, Any] | None, peer_config: str = "router"
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "bgpInstances": [
            {
                "name": "instance-64512",
                "localASN": 64512,
                "peers": [
                    {
                        "name": "r",
                        "peerAddress": ROUTER,
                        "peerASN": 64512,
                        "peerConfigRef": {"name": peer_config},
                    }
                ],
            }
        ]
    }
    if selector is not None:
        spec["nodeSelector"] = selector
    return {"metadata": {"name": name, "uid": f"uid-{name}", "generation": 1}, "spec": spec}


def test_a_node_config_for_every_selected_node_and_none_for_the_others() -> None:
    nodes = [_node("w1", bgp="a"), _node("w2", bgp="a"), _node("cp")]
    wanted = desired([_cluster_config("c", {"matchLabels": {"bgp": "a"}})], nodes, ["router"])
    assert sorted(wanted.node_configs) == ["w1", "w2"]
    _, spec = wanted.node_configs["w1"]
    assert spec["bgpInstances"][0]["peers"][0]["peerConfigRef"] == {"name": "router"}
    assert wanted.conditions["c"][NO_MATCHING_NODE] == ("False", "")
    assert wanted.conditions["c"][MISSING_PEER_CONFIGS] == ("False", "")


def test_no_selector_selects_every_node_and_a_missing_peer_config_is_reported() -> None:
    wanted = desired([_cluster_config("c", None, peer_config="gone")], [_node("w1"), _node("cp")], [])
    assert sorted(wanted.node_configs) == ["cp", "w1"]
    assert wanted.conditions["c"][MISSING_PEER_CONFIGS] == ("True", "missing peer configs: [gone]")


def test_a_node_two_cluster_configs_select_gets_neither() -> None:
    both = [_cluster_config("a", None), _cluster_config("b", {"matchLabels": {"x": "y"}})]
    wanted = desired(both, [_node("w1", x="y"), _node("w2")], ["router"])
    assert sorted(wanted.node_configs) == ["w2"]
    assert wanted.conditions["a"][CONFLICTING_CLUSTER_CONFIG][0] == "True"
    assert wanted.conditions["b"][NO_MATCHING_NODE] == ("False", "")


def _peer_config(**timers: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "router"},
        "spec": {
            "timers": timers,
            "families": [
                {"afi": "ipv4", "safi": "unicast", "advertisements": {"matchLabels": {"adv": "yes"}}}
            ],
        },
    }


def _advertisement(labels: dict[str, str], *entries: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "adv", "labels": labels}, "spec": {"advertisements": list(entries)}}


def _lb_service(name: str, ip: str, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}},
    }


def _node_config() -> dict[str, Any]:
    _, spec = desired([_cluster_config("c", None)], [_node("w1")], ["router"]).node_configs["w1"]
    return {"metadata": {"name": "w1"}, "spec": spec}


POD_CIDR = IPv4Network("10.136.1.0/24")
ALL = {"matchExpressions": [{"key": "somekey", "operator": "NotIn", "values": ["never-used-value"]}]}


def test_the_agent_announces_what_its_peer_configs_family_selects() -> None:
    advertisement = _advertisement(
        {"adv": "yes"},
        {"advertisementType": "PodCIDR"},
        {"advertisementType": "Service", "service": {"addresses": ["LoadBalancerIP"]}, "selector": ALL},
    )
    decision = node_bgp_config_v2(
        _node_config(),
        {"router": _peer_config(connectRetryTimeSeconds=1, holdTimeSeconds=9, keepAliveTimeSeconds=3)},
        [advertisement],
        [POD_CIDR],
        [_lb_service("web", "172.198.1.193")],
    )
    assert decision is not None
    (router,) = decision.routers
    assert router.local_asn == 64512
    assert [(n.address, n.asn, n.timers) for n in router.neighbors] == [
        (IPv4Address(ROUTER), 64512, NeighborTimers(1, 9, 3))
    ]
    assert router.prefixes == (POD_CIDR, IPv4Network("172.198.1.193/32"))


def test_nothing_is_announced_without_a_matching_advertisement_or_service_selector() -> None:
    unlabelled = _advertisement({}, {"advertisementType": "PodCIDR"})
    no_selector = _advertisement(
        {"adv": "yes"}, {"advertisementType": "Service", "service": {"addresses": ["LoadBalancerIP"]}}
    )
    decision = node_bgp_config_v2(
        _node_config(),
        {"router": _peer_config()},
        [unlabelled, no_selector],
        [POD_CIDR],
        [_lb_service("w", "1.2.3.4")],
    )
    assert decision is not None
    assert decision.routers[0].prefixes == ()
    assert decision.routers[0].neighbors[0].timers == NeighborTimers(120, 90, 30)  # the CRD's defaults


def test_a_node_without_node_config_runs_no_bgp() -> None:
    assert node_bgp_config_v2(None, {}, [], [POD_CIDR], []) is None


def test_the_1_17_status_lists_each_peer_with_its_state_and_routes() -> None:
    established = SpeakerPeer(IPv4Address(ROUTER), 64512, 64512, SessionState.ESTABLISHED, 30.0, 1, 1, 2)
    since: dict[tuple[int, str], float] = {}
    status = node_status(_node_config(), {64512: [established]}, now=1_000_000.0, established_since=since)
    (instance,) = status["bgpInstances"]
    (peer,) = instance["peers"]
    assert (instance["name"], instance["localASN"]) == ("instance-64512", 64512)
    assert peer["peeringState"] == "established"
    assert peer["establishedTime"] == "1970-01-12T13:46:10Z"  # now - uptime
    assert peer["routeCount"] == [{"afi": "ipv4", "safi": "unicast", "received": 1, "advertised": 2}]
    later = node_status(_node_config(), {64512: [established]}, now=1_000_005.4, established_since=since)
    assert later == status  # the status moves only when a session does
    active = SpeakerPeer(IPv4Address(ROUTER), 64512, 64512, SessionState.ACTIVE, None, 0, 0, 0)
    down = node_status(_node_config(), {64512: [active]}, now=1_000_010.0, established_since=since)
    assert down["bgpInstances"][0]["peers"][0] == {
        "name": "r",
        "peerAddress": ROUTER,
        "peerASN": 64512,
        "peeringState": "active",
    }
    assert (
        node_status(_node_config(), {}, now=0.0, established_since={})["bgpInstances"][0]["peers"][0][
            "peeringState"
        ]
        == "unknown"
    )
