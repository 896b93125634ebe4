"""Cilium 1.13 BGP control plane decisions (FACTS.md, "Cilium: BGP control plane v1")."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bgpconform.lab.cilium.agent_services import desired_entries
from bgpconform.lab.cilium.bgp_control import (
    ERR_MULTIPLE_POLICIES,
    POLICY_SELECTION_FAILED,
    DesiredNeighbor,
    NodeBgpConfig,
    PolicyConflict,
    node_bgp_config,
)

POD_CIDR = IPv4Network("10.136.1.0/24")
ALL_SERVICES = {"matchExpressions": [{"key": "somekey", "operator": "NotIn", "values": ["never-used-value"]}]}


def policy(
    name: str = "01-bgp-peering-policy",
    *,
    node_selector: dict[str, Any] | None = None,
    service_selector: dict[str, Any] | None = None,
    export_pod_cidr: bool = True,
    asn: int = 64512,
    peers: tuple[str, ...] = ("192.168.1.1/32",),
) -> dict[str, Any]:
    """The walkthrough's policy by default (`cilium-bgp-policy.yaml`), without its service selector."""
    router: dict[str, Any] = {
        "localASN": asn,
        "exportPodCIDR": export_pod_cidr,
        "neighbors": [{"peerAddress": p, "peerASN": 64512} for p in peers],
    }
    if service_selector is not None:
        router["serviceSelector"] = service_selector
    spec: dict[str, Any] = {"virtualRouters": [router]}
    if node_selector is not None:
        spec["nodeSelector"] = node_selector
    return {"metadata": {"name": name}, "spec": spec}


def service(
    name: str = "my-service",
    namespace: str = "default",
    *,
    ips: tuple[str, ...] = ("172.198.1.246",),
    kind: str = "LoadBalancer",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"type": kind, "ports": [{"port": 8080, "targetPort": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


A = {"bgp-policy": "a"}
WALKTHROUGH = policy(node_selector={"matchLabels": A}, service_selector=ALL_SERVICES)


def test_no_policy_selecting_the_node_means_no_bgp() -> None:
    assert node_bgp_config([], A, [POD_CIDR], []) is None
    assert node_bgp_config([WALKTHROUGH], {"kubernetes.io/hostname": "x"}, [POD_CIDR], []) is None


def test_the_walkthrough_policy_peers_with_the_router_and_exports_the_pod_cidr() -> None:
    decision = node_bgp_config([WALKTHROUGH], A, [POD_CIDR], [service()])
    assert isinstance(decision, NodeBgpConfig)
    assert decision.policy == "01-bgp-peering-policy"
    (router,) = decision.routers
    assert router.local_asn == 64512
    assert router.neighbors == (DesiredNeighbor(IPv4Address("192.168.1.1"), 64512),)
    assert router.pod_cidrs == (POD_CIDR,)
    assert router.service_prefixes == (IPv4Network("172.198.1.246/32"),)
    assert router.prefixes == (POD_CIDR, IPv4Network("172.198.1.246/32"))


def test_a_nil_node_selector_selects_every_node() -> None:
    decision = node_bgp_config([policy()], {}, [POD_CIDR], [])
    assert isinstance(decision, NodeBgpConfig)


def test_two_policies_selecting_a_node_clear_its_bgp_and_log_cilium_s_error() -> None:
    other = policy(
        "02-other", node_selector={"matchExpressions": [{"key": "bgp-policy", "operator": "Exists"}]}
    )
    decision = node_bgp_config([WALKTHROUGH, other], A, [POD_CIDR], [service()])
    assert decision == PolicyConflict(("01-bgp-peering-policy", "02-other"))
    assert "more then one CiliumBGPPeeringPolicy applies to this node" in ERR_MULTIPLE_POLICIES
    assert POLICY_SELECTION_FAILED == (
        'level=error msg="Policy selection failed" component=Controller.Reconcile error="more then one '
        "CiliumBGPPeeringPolicy applies to this node, please ensure only a single Policy matches this "
        "node's labels\" subsys=bgp-control-plane"
    )
    # A node only one of them selects is unaffected.
    assert isinstance(
        node_bgp_config([WALKTHROUGH, other], {"bgp-policy": "b"}, [POD_CIDR], []), NodeBgpConfig
    )


def test_a_nil_service_selector_announces_no_services() -> None:
    decision = node_bgp_config([policy()], A, [POD_CIDR], [service()])
    assert isinstance(decision, NodeBgpConfig)
    assert decision.routers[0].service_prefixes == ()


def test_export_pod_cidr_false_announces_no_pod_cidr() -> None:
    decision = node_bgp_config([policy(export_pod_cidr=False)], A, [POD_CIDR], [])
    assert isinstance(decision, NodeBgpConfig)
    assert decision.routers[0].prefixes == ()


def test_services_are_selected_by_labels_name_and_namespace() -> None:
    services = [
        service("web", labels={"announce": "yes"}, ips=("172.198.1.10",)),
        service("db", ips=("172.198.1.11",)),
        service("api", namespace="prod", ips=("172.198.1.12",)),
    ]
    by_label = {"matchLabels": {"announce": "yes"}}
    by_name = {"matchLabels": {"io.kubernetes.service.name": "db"}}
    by_namespace = {"matchLabels": {"io.kubernetes.service.namespace": "prod"}}
    for selector, expected in (
        (by_label, "172.198.1.10"),
        (by_name, "172.198.1.11"),
        (by_namespace, "172.198.1.12"),
    ):
        decision = node_bgp_config([policy(service_selector=selector)], A, [POD_CIDR], services)
        assert isinstance(decision, NodeBgpConfig)
        assert decision.routers[0].service_prefixes == (IPv4Network(f"{expected}/32"),)


def test_one_slash_32_per_ingress_ip_of_load_balancer_services_only() -> None:
    services = [
        service("two", ips=("172.198.1.21", "172.198.1.20")),
        service("pending", ips=()),
        service("cluster", kind="ClusterIP", ips=("172.198.1.30",)),
        service("v6", ips=("2001:db8::1",)),
    ]
    decision = node_bgp_config([policy(service_selector={})], A, [POD_CIDR], services)
    assert isinstance(decision, NodeBgpConfig)
    assert decision.routers[0].service_prefixes == (
        IPv4Network("172.198.1.20/32"),
        IPv4Network("172.198.1.21/32"),
    )


def test_neighbors_come_from_peer_address_cidrs_and_ipv6_is_reported() -> None:
    decision = node_bgp_config(
        [policy(peers=("192.168.1.1/32", "192.168.1.2/32", "fd00::1/128"))], A, [POD_CIDR], []
    )
    assert isinstance(decision, NodeBgpConfig)
    assert [str(n.address) for n in decision.routers[0].neighbors] == ["192.168.1.1", "192.168.1.2"]
    assert any("IPv6" in problem for problem in decision.problems)


def test_an_invalid_node_selector_selects_nothing() -> None:
    bad = policy(node_selector={"matchExpressions": [{"key": "x", "operator": "In", "values": []}]})
    assert node_bgp_config([bad], A, [POD_CIDR], []) is None


def _slice(name: str, endpoints: list[tuple[str, bool | None]], port_name: str = "") -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{name}-abcde",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": 80, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
            for ip, ready in endpoints
        ],
    }


def test_the_datapath_gets_ready_endpoints_of_each_load_balancer_frontend() -> None:
    slices = [_slice("my-service", [("10.136.1.2", True), ("10.136.3.2", False), ("10.136.2.2", None)])]
    entries, problems = desired_entries([service()], slices)
    assert problems == []
    (entry,) = entries
    assert entry.service == "default/my-service"
    assert (str(entry.frontend), entry.port) == ("172.198.1.246", 8080)
    assert [str(b) for b in entry.backends] == ["10.136.1.2:80", "10.136.2.2:80"]


def test_a_frontend_without_ready_endpoints_is_programmed_empty_and_keys_name_each_frontend() -> None:
    entries, _ = desired_entries([service(ips=("172.198.1.1", "172.198.1.2"))], [])
    assert [(e.service, e.backends) for e in entries] == [
        ("default/my-service/172.198.1.1/8080", ()),
        ("default/my-service/172.198.1.2/8080", ()),
    ]
