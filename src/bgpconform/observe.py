"""Read-only views of the system under test, in the shapes the walkthrough prints them.

Each function takes ports (the cluster's API, the router) and returns plain data plus a text table a
person recognises (`kubectl get nodes`, `kubectl get pods -A`, `cilium bgp peers`, the router's
session and route lists), so steps both assert on the data and attach the table as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Network
from typing import Any

from bgpconform.cilium.bgp_peers import BgpPeer as CiliumPeer
from bgpconform.cilium.bgp_peers import summary_table
from bgpconform.cilium.labels import AGENT_SELECTOR
from bgpconform.cilium.versions import image_version
from bgpconform.kubeapi.port import KubeApi, Resources
from bgpconform.routers.port import Route, RouterPort, Session


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    began = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int((datetime.now(UTC) - began).total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds < 600 else f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60}m"


# -- nodes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NodeView:
    name: str
    ready: bool
    reason: str
    message: str
    roles: str
    version: str
    labels: Mapping[str, str]


def node_view(node: Mapping[str, Any]) -> NodeView:
    labels = node["metadata"].get("labels", {})
    conditions = node.get("status", {}).get("conditions", [])
    condition: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    return NodeView(
        name=node["metadata"]["name"],
        ready=condition.get("status") == "True",
        reason=str(condition.get("reason", "")),
        message=str(condition.get("message", "")),
        roles=",".join(roles) or "<none>",
        version=str(node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")),
        labels=labels,
    )


def nodes(kube: KubeApi) -> list[NodeView]:
    return sorted((node_view(n) for n in kube.items(Resources.NODES)), key=lambda v: v.name)


def node_table(kube: KubeApi) -> str:
    """`kubectl get nodes`."""
    rows = []
    for node in kube.items(Resources.NODES):
        view = node_view(node)
        status = "Ready" if view.ready else "NotReady"
        age = _age(node["metadata"].get("creationTimestamp"))
        rows.append((view.name, status, view.roles, age, view.version))
    return _table(("NAME", "STATUS", "ROLES", "AGE", "VERSION"), sorted(rows))


# -- pods ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PodView:
    namespace: str
    name: str
    ready: str
    status: str
    restarts: int
    node: str
    ip: str
    labels: Mapping[str, str]
    images: tuple[str, ...] = ()  # its containers' images, in the spec's order

    @property
    def running_and_ready(self) -> bool:
        total = self.ready.split("/")
        return self.status == "Running" and total[0] == total[1]


def pod_status(pod: Mapping[str, Any]) -> str:
    """The STATUS column as kubectl computes it, for the cases the walkthrough shows."""
    status = pod.get("status", {})
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    inits = pod["spec"].get("initContainers") or []
    done = 0
    for init in status.get("initContainerStatuses") or []:
        state = init.get("state", {})
        if state.get("terminated", {}).get("exitCode") == 0:
            done += 1
        elif state.get("waiting", {}).get("reason") not in (None, "PodInitializing"):
            return f"Init:{state['waiting']['reason']}"
    if inits and done < len(inits):
        return f"Init:{done}/{len(inits)}"
    for container in status.get("containerStatuses") or []:
        waiting = container.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(status.get("phase", "Unknown"))


def pods(kube: KubeApi, namespace: str | None = None, label_selector: str | None = None) -> list[PodView]:
    views = []
    for pod in kube.items(Resources.PODS, namespace, label_selector=label_selector):
        statuses = pod.get("status", {}).get("containerStatuses") or []
        views.append(
            PodView(
                namespace=pod["metadata"]["namespace"],
                name=pod["metadata"]["name"],
                ready=f"{sum(1 for s in statuses if s.get('ready'))}/{len(pod['spec']['containers'])}",
                status=pod_status(pod),
                restarts=sum(int(s.get("restartCount", 0)) for s in statuses),
                node=str(pod["spec"].get("nodeName") or "<none>"),
                ip=str(pod.get("status", {}).get("podIP") or "<none>"),
                labels=pod["metadata"].get("labels", {}),
                images=tuple(str(c.get("image", "")) for c in pod["spec"]["containers"]),
            )
        )
    return sorted(views, key=lambda v: (v.namespace, v.name))


def pod_table(views: Sequence[PodView]) -> str:
    """`kubectl get pods -A -o wide` (without the columns the walkthrough never shows)."""
    rows = [(v.namespace, v.name, v.ready, v.status, str(v.restarts), v.ip, v.node) for v in views]
    return _table(("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "IP", "NODE"), rows)


# -- BGP -----------------------------------------------------------------------------------------
def bgp_peers_table(per_node: Mapping[str, Sequence[CiliumPeer]]) -> str:
    """`cilium bgp peers`, as cilium-cli prints it."""
    return summary_table(per_node)


def sessions_table(sessions: Sequence[Session]) -> str:
    """The router's sessions, like RouterOS `/routing/bgp/session print` reduced to what matters."""
    rows = [
        (
            s.name or "-",
            str(s.peer),
            str(s.remote_asn or "-"),
            str(s.state),
            f"{s.uptime_seconds:.0f}s" if s.uptime_seconds is not None else "-",
            str(s.received),
            str(s.advertised),
        )
        for s in sorted(sessions, key=lambda s: s.peer)
    ]
    return _table(("NAME", "REMOTE-ADDRESS", "REMOTE-AS", "STATE", "UPTIME", "RECEIVED", "ADVERTISED"), rows)


def routes_table(routes: Sequence[Route]) -> str:
    """The router's routes for some prefixes, like `/ip/route print`: one line per path."""
    rows = [
        (
            str(r.prefix),
            ",".join(str(h) for h in r.nexthops) or "-",
            "active" if r.active else "candidate",
            r.protocol,
            r.source,
        )
        for r in sorted(routes, key=lambda r: (r.prefix, r.source, r.nexthops))
    ]
    return _table(("DST-ADDRESS", "GATEWAY", "STATE", "PROTOCOL", "TABLE"), rows)


def router_routes(router: RouterPort, prefixes: Sequence[IPv4Network]) -> list[Route]:
    found: list[Route] = []
    for prefix in prefixes:
        found += router.bgp_routes(prefix)
        found += router.fib_routes(prefix)
    return found


def cluster_versions(kube: KubeApi) -> dict[str, str]:
    """k3s as the kubelets report it and Cilium as the agents' image names it, for the report."""
    versions: dict[str, str] = {}
    nodes = kube.items(Resources.NODES)
    if nodes:
        versions["k3s"] = str(nodes[0]["status"]["nodeInfo"]["kubeletVersion"])
    for pod in kube.items(Resources.PODS, "kube-system", label_selector=AGENT_SELECTOR)[:1]:
        image = str(pod["spec"]["containers"][0]["image"])
        versions["cilium"] = image_version(image) or image
    return versions
