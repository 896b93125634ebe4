"""The 1.16+ operator's half of BGPv2: a CiliumBGPNodeConfig for every node a cluster config selects.

For each `CiliumBGPClusterConfig` the leading operator writes, for every node its `nodeSelector`
matches (nil: every node), a `CiliumBGPNodeConfig` named after the node, holding the cluster config's
`bgpInstances` (name, localASN, peers with their `peerConfigRef`) and owned by it; node configs of
nodes no longer selected are deleted. A node two cluster configs select gets neither's config. The
cluster config's conditions say `cilium.io/NoMatchingNode`, `cilium.io/MissingPeerConfigs` and
`cilium.io/ConflictingClusterConfig` (FACTS.md, "BGPv2 in brief"; their reasons and messages here are
the lab's, unverified). The agent then reads its own node config (`bgp_control.node_bgp_config_v2`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bgpconform.kubeapi.client import JSON_PATCH, ApiException, Kube, KubeResource, Resources
from bgpconform.lab import defects
from bgpconform.lab.cilium.selectors import SelectorError, bgp_selects_node
from bgpconform.lab.cluster.controller import Controller

NO_MATCHING_NODE = "cilium.io/NoMatchingNode"
MISSING_PEER_CONFIGS = "cilium.io/MissingPeerConfigs"
CONFLICTING_CLUSTER_CONFIG = "cilium.io/ConflictingClusterConfig"


@dataclass
class Desired:
    """What the cluster configs call for: node config specs by node, and each config's conditions."""

    node_configs: dict[str, tuple[Mapping[str, Any], dict[str, Any]]] = field(default_factory=dict)
    conditions: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def node_config_spec(cluster_config: Mapping[str, Any]) -> dict[str, Any]:
    instances = []
    for instance in (cluster_config.get("spec") or {}).get("bgpInstances") or []:
        peers = [
            {key: peer[key] for key in ("name", "peerAddress", "peerASN", "peerConfigRef") if key in peer}
            for peer in instance.get("peers") or []
        ]
        entry = {"name": instance.get("name"), "localASN": instance.get("localASN"), "peers": peers}
        if "localPort" in instance:
            entry["localPort"] = instance["localPort"]
        instances.append(entry)
    return {"bgpInstances": instances}


def desired(
    cluster_configs: Sequence[Mapping[str, Any]],
    nodes: Sequence[Mapping[str, Any]],
    peer_configs: Sequence[str],
) -> Desired:
    """The node configs and conditions the cluster configs call for, given the nodes and the names of
    the peer configs that exist."""
    result = Desired()
    selected_by: dict[str, list[Mapping[str, Any]]] = {}
    for config in cluster_configs:
        selector = (config.get("spec") or {}).get("nodeSelector")
        matched: list[str] = []
        for node in nodes:
            labels = (node.get("metadata") or {}).get("labels") or {}
            try:
                if defects.active("operator-ignores-cluster-config-node-selector") or bgp_selects_node(
                    selector, labels
                ):
                    matched.append(_name(node))
            except SelectorError:
                break
        for node_name in matched:
            selected_by.setdefault(node_name, []).append(config)
        refs = sorted(
            {
                str((peer.get("peerConfigRef") or {}).get("name") or "")
                for instance in (config.get("spec") or {}).get("bgpInstances") or []
                for peer in instance.get("peers") or []
                if peer.get("peerConfigRef")
            }
        )
        missing = [ref for ref in refs if ref not in peer_configs]
        result.conditions[_name(config)] = {
            NO_MATCHING_NODE: ("False", "") if matched else ("True", "no node matches the nodeSelector"),
            MISSING_PEER_CONFIGS: (
                ("True", f"missing peer configs: [{' '.join(missing)}]") if missing else ("False", "")
            ),
            CONFLICTING_CLUSTER_CONFIG: ("False", ""),
        }
    for node_name, configs in selected_by.items():
        if len(configs) > 1:
            names = sorted(_name(c) for c in configs)
            for config in configs:
                result.conditions[_name(config)][CONFLICTING_CLUSTER_CONFIG] = (
                    "True",
                    f"node {node_name} is selected by more than one cluster config: {', '.join(names)}",
                )
            continue
        result.node_configs[node_name] = (configs[0], node_config_spec(configs[0]))
    return result


class NodeConfigController(Controller):
    """Writes the node configs and the cluster configs' conditions `desired` calls for."""

    name = "cilium-operator-bgp-node-configs"

    def __init__(self, kube: Kube, kinds: Mapping[str, KubeResource], *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.kinds = kinds
        self.cluster_configs = self.inform(kinds["CiliumBGPClusterConfig"], retry=1.0)
        self.peer_configs = self.inform(kinds["CiliumBGPPeerConfig"], retry=1.0)
        self.node_configs = self.inform(kinds["CiliumBGPNodeConfig"], retry=1.0)
        self.nodes = self.inform(Resources.NODES)

    def reconcile(self) -> None:
        wanted = desired(
            self.cluster_configs.objects(),
            self.nodes.objects(),
            [_name(p) for p in self.peer_configs.objects()],
        )
        node_configs = self.kinds["CiliumBGPNodeConfig"]
        existing = {_name(c): c for c in self.node_configs.objects()}
        for node_name, (owner, spec) in wanted.node_configs.items():
            found = existing.get(node_name)
            if found is None:
                self._create(node_configs, node_name, owner, spec)
            elif found.get("spec") != spec:
                self._ignore_gone(self.kube.patch, node_configs, node_name, {"spec": spec})
        for node_name, found in existing.items():
            owned = any(
                ref.get("kind") == "CiliumBGPClusterConfig"
                for ref in found["metadata"].get("ownerReferences") or []
            )
            if owned and node_name not in wanted.node_configs:
                self._ignore_gone(self.kube.delete, node_configs, node_name)
        for config in self.cluster_configs.objects():
            self._write_conditions(config, wanted.conditions.get(_name(config), {}))

    def _create(
        self, resource: KubeResource, node: str, owner: Mapping[str, Any], spec: dict[str, Any]
    ) -> None:
        body = {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": {
                "name": node,
                "ownerReferences": [
                    {
                        "apiVersion": owner.get("apiVersion") or resource.api_version,
                        "kind": "CiliumBGPClusterConfig",
                        "name": _name(owner),
                        "uid": (owner.get("metadata") or {}).get("uid"),
                        "controller": True,
                    }
                ],
            },
            "spec": spec,
        }
        try:
            self.kube.create(resource, body)
        except ApiException as exc:
            if exc.status != 409:  # a new leader finds it written already: the next pass compares
                raise
            self.wake()

    def _ignore_gone(self, call: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """A write that loses a race (the object gone or changed meanwhile) is retried next pass."""
        try:
            call(*args, **kwargs)
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
            self.wake()

    def _write_conditions(self, config: Mapping[str, Any], wanted: Mapping[str, tuple[str, str]]) -> None:
        meta = config.get("metadata") or {}
        current = {c.get("type"): c for c in (config.get("status") or {}).get("conditions") or []}
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = []
        changed = False
        for kind, (status, message) in sorted(wanted.items()):
            old: dict[str, Any] = current.get(kind) or {}
            same = bool(old) and old.get("status") == status and old.get("message") == message
            if same and old.get("observedGeneration") == meta.get("generation"):
                conditions.append(old)
                continue
            changed = True
            conditions.append(
                {
                    "type": kind,
                    "status": status,
                    "reason": kind.split("/", 1)[1],
                    "message": message,
                    "observedGeneration": meta.get("generation") or 1,
                    "lastTransitionTime": old.get("lastTransitionTime", now) if same else now,
                }
            )
        if not changed:
            return
        self._ignore_gone(
            self.kube.patch,
            self.kinds["CiliumBGPClusterConfig"],
            _name(config),
            [{"op": "replace", "path": "/status", "value": {"conditions": conditions}}],
            content_type=JSON_PATCH,
            subresource="status",
        )
