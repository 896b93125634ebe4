"""A Cilium setting as each node's agent reads it: `cilium-config`, overridden per node.

From Cilium 1.13 a CiliumNodeConfig (`cilium.io/v2alpha1`, namespaced) overrides `cilium-config`
keys on the nodes its `nodeSelector` selects (an empty selector selects every node); the agent pod's
`config` init container resolves both when the pod starts (docs.cilium.io "Per-node configuration",
docs/verified-facts.md). `cilium config view` shows only the ConfigMap, so a
leftover CiliumNodeConfig can turn a feature off on a node while the ConfigMap says it is on. Several
CiliumNodeConfigs selecting one node are applied in name order, the later winning.

The nodes a selector picks are asked of the API server (a label selector query), so selector
semantics are the cluster's own, not a copy of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bgpconform.cilium.labels import CONFIG_MAP
from bgpconform.kubeapi.port import KubeApi, Resources


@dataclass(frozen=True)
class Setting:
    value: str | None  # None: no source sets it
    source: str


def selector_query(selector: Mapping[str, Any]) -> str:
    """A `metav1.LabelSelector` in the string form a list request takes."""
    terms = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = ",".join(sorted(expression.get("values") or []))
        terms.append(
            {
                "In": f"{key} in ({values})",
                "NotIn": f"{key} notin ({values})",
                "Exists": key,
                "DoesNotExist": f"!{key}",
            }[operator]
        )
    return ",".join(terms)


def per_node(
    kube: KubeApi, key: str, nodes: Sequence[str], namespace: str = "kube-system"
) -> dict[str, Setting]:
    """What `key` is on each of `nodes`, and which object says so."""
    config = kube.get_or_none(Resources.CONFIGMAPS, CONFIG_MAP, namespace)
    base = ((config or {}).get("data") or {}).get(key)
    found = {node: Setting(base, f"ConfigMap {namespace}/{CONFIG_MAP}") for node in nodes}
    overrides = kube.items_if_served(Resources.CILIUM_NODE_CONFIGS, namespace)
    for override in sorted(overrides, key=lambda o: str(o["metadata"]["name"])):
        spec = override.get("spec") or {}
        defaults = spec.get("defaults") or {}
        if key not in defaults:
            continue
        query = selector_query(spec.get("nodeSelector") or {}) or None
        selected = {n["metadata"]["name"] for n in kube.items(Resources.NODES, label_selector=query)}
        source = f"CiliumNodeConfig {namespace}/{override['metadata']['name']}"
        for node in nodes:
            if node in selected:
                found[node] = Setting(str(defaults[key]), source)
    return found
