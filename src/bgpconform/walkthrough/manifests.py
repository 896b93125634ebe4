"""The objects the walkthrough applies, built from the topology so no value is hard-coded in a step."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from ipaddress import IPv4Network
from typing import Any

from bgpconform.cilium import bgp_timers
from bgpconform.cilium.bgp_api import BgpApi, v2_resources
from bgpconform.cilium.lbipam import PoolFormat
from bgpconform.kubeapi.port import KubeResource, Resources
from bgpconform.ownership import HARNESS_LABEL
from bgpconform.topology import LbPool, Topology

# The walkthrough's "announce every service" selector: a NotIn on a key no service has.
ANNOUNCE_ALL_SERVICES: dict[str, Any] = {
    "matchExpressions": [{"key": "somekey", "operator": "NotIn", "values": ["never-used-value"]}]
}


NGINX_CONTAINER = "my-app-container"  # the walkthrough's container name, whose logs the steps read


def peering_policy(topology: Topology) -> dict[str, Any]:
    """CiliumBGPPeeringPolicy (walkthrough `cilium-bgp-policy.yaml`): 1.13's fields, plus the neighbor's
    timers from 1.14, which then come from the topology (`bgp_timers.policy_timers`, FACTS.md)."""
    bgp = topology.bgp
    timers = bgp_timers.policy_timers(
        str(topology.cluster.cilium_version), bgp.timers.connect_retry, bgp.timers.hold, bgp.timers.keepalive
    )
    neighbor = {"peerAddress": f"{topology.router.address}/32", "peerASN": bgp.peer_asn, **timers}
    return {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumBGPPeeringPolicy",
        "metadata": {"name": bgp.policy_name, "labels": {HARNESS_LABEL: "true"}},
        "spec": {
            "nodeSelector": {"matchLabels": dict(bgp.node_selector)},
            "virtualRouters": [
                {
                    "localASN": bgp.node_asn,
                    "exportPodCIDR": bgp.export_pod_cidr,
                    "serviceSelector": ANNOUNCE_ALL_SERVICES,
                    "neighbors": [neighbor],
                }
            ],
        },
    }


# The label that ties the harness's BGPv2 advertisement to its peer config's family.
ADVERTISE_LABEL = "bgpconform.io/advertise"


def bgp_configuration(topology: Topology) -> list[tuple[KubeResource, dict[str, Any]]]:
    """What configures BGP on the topology's API (`Topology.bgp_api`), in the order to create it: the
    walkthrough's CiliumBGPPeeringPolicy on v1; on BGPv2 (FACTS.md, "BGPv2 in brief") the same promise
    as a peer config (the router's timers and the ipv4/unicast family), an advertisement (the pod CIDR
    and every LoadBalancer IP, with the walkthrough's announce-all selector) and a cluster config
    (the labelled nodes, one instance of the node ASN peering with the router)."""
    version = str(topology.cluster.cilium_version)
    if topology.bgp_api is BgpApi.V1:
        return [(Resources.BGP_PEERING_POLICIES, peering_policy(topology))]
    kinds = v2_resources(version)
    bgp = topology.bgp
    labels = {HARNESS_LABEL: "true"}
    peer_config_name = f"{bgp.policy_name}-router"
    advertisement_name = f"{bgp.policy_name}-routes"
    advertised: list[dict[str, Any]] = []
    if bgp.export_pod_cidr:
        advertised.append({"advertisementType": "PodCIDR"})
    advertised.append(
        {
            "advertisementType": "Service",
            "service": {"addresses": ["LoadBalancerIP"]},
            "selector": ANNOUNCE_ALL_SERVICES,
        }
    )
    peer_config = {
        "apiVersion": kinds.peer_configs.api_version,
        "kind": kinds.peer_configs.kind,
        "metadata": {"name": peer_config_name, "labels": dict(labels)},
        "spec": {
            "timers": {
                "connectRetryTimeSeconds": bgp.timers.connect_retry,
                "holdTimeSeconds": bgp.timers.hold,
                "keepAliveTimeSeconds": bgp.timers.keepalive,
            },
            "families": [
                {
                    "afi": "ipv4",
                    "safi": "unicast",
                    "advertisements": {"matchLabels": {ADVERTISE_LABEL: bgp.policy_name}},
                }
            ],
        },
    }
    advertisement = {
        "apiVersion": kinds.advertisements.api_version,
        "kind": kinds.advertisements.kind,
        "metadata": {"name": advertisement_name, "labels": {**labels, ADVERTISE_LABEL: bgp.policy_name}},
        "spec": {"advertisements": advertised},
    }
    cluster_config = {
        "apiVersion": kinds.cluster_configs.api_version,
        "kind": kinds.cluster_configs.kind,
        "metadata": {"name": bgp.policy_name, "labels": dict(labels)},
        "spec": {
            "nodeSelector": {"matchLabels": dict(bgp.node_selector)},
            "bgpInstances": [
                {
                    "name": f"instance-{bgp.node_asn}",
                    "localASN": bgp.node_asn,
                    "peers": [
                        {
                            "name": "router",
                            "peerAddress": str(topology.router.address),
                            "peerASN": bgp.peer_asn,
                            "peerConfigRef": {"name": peer_config_name},
                        }
                    ],
                }
            ],
        },
    }
    return [
        (kinds.peer_configs, peer_config),
        (kinds.advertisements, advertisement),
        (kinds.cluster_configs, cluster_config),
    ]


# The migration's label on a node: `joining` once the BGPv2 cluster config selects it (it still runs
# v1, which wins where both select it), `moved` once the v1 policy lets it go.
MIGRATION_LABEL = "bgpconform.io/bgp-v2"
JOINING, MOVED = "joining", "moved"


def migration_to_v2(
    topology: Topology, policy: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[KubeResource, dict[str, Any]]]]:
    """Moving a v1 policy's nodes to BGPv2 one at a time (1.16-1.18, where both exist and a node that
    both select runs v1, FACTS.md, the 1.16 row): the merge patch that makes the policy let go of
    `moved` nodes, and the BGPv2 objects of the same promise that select nodes with the label at all,
    so each node's BGPv2 configuration exists before the policy lets go of it. The peer config keeps
    the policy's graceful restart, so the router keeps a moving node's routes."""
    v2 = topology.model_copy(update={"bgp": topology.bgp.model_copy(update={"api": BgpApi.V2.value})})
    objects = bgp_configuration(v2)
    routers = (policy.get("spec") or {}).get("virtualRouters") or []
    neighbors = [n for router in routers for n in router.get("neighbors") or []]
    graceful = next(
        (n["gracefulRestart"] for n in neighbors if (n.get("gracefulRestart") or {}).get("enabled")), None
    )
    for _, body in objects:
        if body["kind"] == "CiliumBGPPeerConfig" and graceful is not None:
            body["spec"]["gracefulRestart"] = dict(graceful)
        if body["kind"] == "CiliumBGPClusterConfig":
            selector = body["spec"]["nodeSelector"]
            selector["matchExpressions"] = [{"key": MIGRATION_LABEL, "operator": "Exists"}]
    selector = copy.deepcopy((policy.get("spec") or {}).get("nodeSelector") or {})
    kept = [e for e in selector.get("matchExpressions") or [] if e.get("key") != MIGRATION_LABEL]
    selector["matchExpressions"] = [*kept, {"key": MIGRATION_LABEL, "operator": "NotIn", "values": [MOVED]}]
    return {"spec": {"nodeSelector": selector}}, objects


def graceful_restart_patch(obj: dict[str, Any], enabled: bool, restart_time: int) -> dict[str, Any] | None:
    """The merge patch that turns graceful restart on or off where the object's kind carries it: every
    neighbor of a 1.14+ peering policy, or a BGPv2 peer config (FACTS.md); None when it is already so."""
    wanted = {"enabled": True, "restartTimeSeconds": restart_time} if enabled else None
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CiliumBGPPeeringPolicy":
        routers = copy.deepcopy(spec.get("virtualRouters") or [])
        changed = False
        for router in routers:
            for neighbor in router.get("neighbors") or []:
                if bool((neighbor.get("gracefulRestart") or {}).get("enabled")) != enabled:
                    changed = True
                    neighbor.pop("gracefulRestart", None)
                    if wanted is not None:
                        neighbor["gracefulRestart"] = dict(wanted)
        return {"spec": {"virtualRouters": routers}} if changed else None
    if obj.get("kind") == "CiliumBGPPeerConfig":
        if bool((spec.get("gracefulRestart") or {}).get("enabled")) == enabled:
            return None
        return {"spec": {"gracefulRestart": wanted}}  # null removes it in a merge patch
    return None


def namespace(name: str) -> dict[str, Any]:
    """The workload's namespace, when the topology names one the cluster lacks; marked as the harness's."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {HARNESS_LABEL: "true"}},
    }


def lb_pool(pool: LbPool, cilium_version: str) -> dict[str, Any]:
    selector = pool.service_selector.as_kubernetes() if pool.service_selector is not None else None
    return pool_object(pool.name, list(pool.cidrs), cilium_version, service_selector=selector)


def pool_object(
    name: str,
    cidrs: Sequence[IPv4Network],
    cilium_version: str,
    *,
    service_selector: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CiliumLoadBalancerIPPool with the CIDRs where `cilium_version` reads them: 1.13-1.14 `cidrs`,
    `blocks` from 1.15 (`PoolFormat`, FACTS.md)."""
    spec: dict[str, Any] = PoolFormat.for_version(cilium_version).spec_ranges(list(cidrs))
    if service_selector is not None:
        spec["serviceSelector"] = service_selector
    return {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumLoadBalancerIPPool",
        "metadata": {"name": name, "labels": {HARNESS_LABEL: "true"}},
        "spec": spec,
    }


def pool_ranges(cidrs: Sequence[IPv4Network], cilium_version: str) -> dict[str, Any]:
    """A pool's `spec` fields holding `cidrs`, for a patch that moves the pool."""
    return PoolFormat.for_version(cilium_version).spec_ranges(list(cidrs))


def nginx_pod(topology: Topology) -> dict[str, Any]:
    """The walkthrough's `simple-pod`."""
    workload = topology.workload
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": workload.pod_name,
            "namespace": workload.namespace,
            "labels": {"app": workload.app_label, HARNESS_LABEL: "true"},
        },
        "spec": {
            "containers": [
                {
                    "name": NGINX_CONTAINER,
                    "image": workload.image,
                    "ports": [{"containerPort": workload.target_port}],
                }
            ]
        },
    }


def lb_service(
    topology: Topology, name: str | None = None, *, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """The walkthrough's `my-service`: type LoadBalancer, port 8080 to the pod's 80."""
    workload = topology.workload
    metadata: dict[str, Any] = {
        "name": name or workload.service_name,
        "namespace": workload.namespace,
        "labels": {HARNESS_LABEL: "true"},
    }
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": workload.app_label},
            "ports": [
                {"port": workload.port, "targetPort": workload.target_port, "protocol": workload.protocol}
            ],
        },
    }
