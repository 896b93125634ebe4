"""Judgements over observed state, apart from the queries that read it (as MetalLB's e2e `validation.go`).

A check is a value that knows what it promises (`expected`) and judges one observation into a
`Finding`: whether the promise holds and, when it does not, what broke it. The stage machine's waits
poll a query until its check holds (`waiting.wait_until`); a Then step asserts the same check once
(`expect.expect_check`). So a stage and a step cannot disagree on what "every node Ready" means, and
each check can be tested against observations alone, with no target.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from bgpconform.bgp_states import SessionState
from bgpconform.cilium.bgp_peers import BgpPeer as CiliumPeer
from bgpconform.cilium.node_config import Setting
from bgpconform.finding import Finding
from bgpconform.observe import NodeView, PodView, bgp_peers_table, pod_table

MANY = 5  # beyond this many prefixes, a routes check speaks in counts and shows the first few


def _names(names: Collection[str]) -> str:
    return ", ".join(sorted(names))


@dataclass(frozen=True)
class EveryNodeReady:
    """Every node the topology names is registered and Ready and, unless `named_only`, no other
    registered node is NotReady (`kubectl get nodes` all Ready, as the walkthrough shows once Cilium
    runs). Verify mode on a user's rack judges the named nodes only: a spare node that is powered off
    is not the release's concern."""

    nodes: frozenset[str]
    named_only: bool = False

    @property
    def expected(self) -> str:
        if self.named_only:
            return f"nodes {_names(self.nodes)} Ready"
        return f"every node Ready, among them {_names(self.nodes)}"

    def __call__(self, observed: Sequence[NodeView]) -> Finding:
        registered = {view.name for view in observed}
        broken = [f"{name}: not registered" for name in sorted(self.nodes - registered)]
        broken += [
            f"{view.name}: NotReady ({view.reason or 'no reason'}: {view.message or 'no message'})"
            for view in observed
            if not view.ready and (view.name in self.nodes or not self.named_only)
        ]
        shown = "; ".join(broken) if broken else f"Ready: {_names(registered)}"
        return Finding(not broken, self.expected, shown)


@dataclass(frozen=True)
class EveryNodeRegistered:
    """Every node the topology names has registered with the API server, Ready or not."""

    nodes: frozenset[str]

    @property
    def expected(self) -> str:
        return f"nodes {sorted(self.nodes)} registered"

    def __call__(self, observed: Sequence[NodeView]) -> Finding:
        registered = {view.name for view in observed}
        missing = self.nodes - registered
        shown = f"missing {sorted(missing)}" if missing else f"registered: {sorted(registered)}"
        return Finding(not missing, self.expected, shown)


@dataclass(frozen=True)
class PodsRunningAndReady:
    """At least one pod matched (one in each of `namespaces`, when given), and every one is Running
    with all its containers ready."""

    what: str
    namespaces: frozenset[str] = frozenset()

    @property
    def expected(self) -> str:
        return f"{self.what} Running and ready"

    def __call__(self, observed: Sequence[PodView]) -> Finding:
        present = self.namespaces <= {view.namespace for view in observed}
        holds = bool(observed) and present and all(view.running_and_ready for view in observed)
        return Finding(holds, self.expected, pod_table(observed) if observed else "no such pod")


@dataclass(frozen=True)
class AgentOnEveryNode:
    """A ready Cilium agent pod on each of these nodes (the DaemonSet's promise)."""

    nodes: frozenset[str]

    @property
    def expected(self) -> str:
        return f"a ready Cilium agent on each of {sorted(self.nodes)}"

    def __call__(self, observed: Sequence[PodView]) -> Finding:
        ready_on = {view.node for view in observed if view.running_and_ready}
        missing = sorted(self.nodes - ready_on)
        shown = f"none ready on {missing}:\n{pod_table(observed)}" if missing else pod_table(observed)
        return Finding(not missing, self.expected, shown)


@dataclass(frozen=True)
class OperatorReplicasReady:
    """The operator runs as many ready replicas as its Deployment asks for, and at least one. `wanted`
    is None when there is no Deployment to ask (then nothing can be judged ready)."""

    wanted: int | None

    @classmethod
    def of_deployment(cls, deployment: Mapping[str, Any] | None) -> OperatorReplicasReady:
        if deployment is None:
            return cls(None)
        replicas = deployment.get("spec", {}).get("replicas")
        return cls(1 if replicas is None else int(replicas))  # Kubernetes defaults replicas to 1

    @property
    def expected(self) -> str:
        if self.wanted is None:
            return "a cilium-operator Deployment with its replicas ready"
        return f"{self.wanted} ready cilium-operator replica(s), as the Deployment asks (at least 1)"

    def __call__(self, observed: Sequence[PodView]) -> Finding:
        ready = [view for view in observed if view.running_and_ready]
        holds = self.wanted is not None and self.wanted >= 1 and len(ready) == self.wanted
        shown = (
            f"{len(ready)} ready of {len(observed)}:\n{pod_table(observed)}"
            if observed
            else "no operator pod"
        )
        return Finding(holds, self.expected, shown)


@dataclass(frozen=True)
class SessionsInState:
    """Each named peering node's session with the router is in `state` (as `cilium bgp peers` says);
    `observed` maps node names to the state their agent reports ("none" for no session)."""

    nodes: frozenset[str]
    state: SessionState

    @property
    def expected(self) -> str:
        return f"sessions {self.state} on {sorted(self.nodes)}"

    def __call__(self, observed: Mapping[str, str]) -> Finding:
        holds = all(observed.get(node) == str(self.state) for node in self.nodes)
        return Finding(holds, self.expected, repr(dict(observed)))  # every node's state, as it reads


@dataclass(frozen=True)
class NoBgpSession:
    """None of these nodes' agents lists a peer (as `cilium bgp peers` prints them; an agent lists a
    peer as soon as a policy selects its node, before any dial)."""

    nodes: frozenset[str]

    @property
    def expected(self) -> str:
        return f"no BGP session on {sorted(self.nodes)}"

    def __call__(self, observed: Mapping[str, Sequence[CiliumPeer]]) -> Finding:
        stray = {node: peers for node, peers in observed.items() if node in self.nodes and peers}
        shown = bgp_peers_table(stray) if stray else f"no peer on {sorted(self.nodes)}"
        return Finding(not stray, self.expected, shown)


@dataclass(frozen=True)
class RouterSessionsEstablished:
    """The router's own view: its session with each peering node's address is established."""

    peers: frozenset[IPv4Address]

    @property
    def expected(self) -> str:
        return f"the router's sessions with {sorted(map(str, self.peers))} established"

    def __call__(self, observed: Mapping[IPv4Address, SessionState]) -> Finding:
        down = {str(peer): str(observed.get(peer, "none")) for peer in sorted(self.peers)}
        down = {peer: state for peer, state in down.items() if state != str(SessionState.ESTABLISHED)}
        shown = ", ".join(f"{peer}: {state}" for peer, state in down.items()) or "all established"
        return Finding(not down, self.expected, shown)


@dataclass(frozen=True)
class RoutesViaNodes:
    """At the router, each prefix has exactly the next hops it should: the peering nodes that announce
    it, no fewer (a node that does not announce) and no more (a node that should not)."""

    wanted: Mapping[IPv4Network, frozenset[IPv4Address]]

    @property
    def expected(self) -> str:
        if len(self.wanted) > MANY:
            hops = {len(nodes) for nodes in self.wanted.values()}
            each = f"{hops.pop()} " if len(hops) == 1 else ""
            return f"each of {len(self.wanted)} prefixes at the router via each of its {each}announcing nodes"
        return ", ".join(
            f"{prefix} at the router via {sorted(map(str, hops))}" for prefix, hops in self.wanted.items()
        )

    def __call__(self, observed: Mapping[IPv4Network, Collection[IPv4Address]]) -> Finding:
        wrong = {
            str(prefix): sorted(map(str, observed.get(prefix, ())))
            for prefix, hops in self.wanted.items()
            if set(observed.get(prefix, ())) != hops
        }
        if len(self.wanted) > MANY:  # hundreds of LB IPs (the scale check): counts and the first few
            if not wrong:
                return Finding(True, self.expected, f"all {len(self.wanted)} via their nodes")
            shown = {
                prefix: self._difference(IPv4Network(prefix), hops)
                for prefix, hops in list(wrong.items())[:MANY]
            }
            return Finding(False, self.expected, f"{len(wrong)} prefixes short, the first: {shown}")
        seen = {str(prefix): sorted(map(str, hops)) for prefix, hops in observed.items()}
        return Finding(not wrong, self.expected, str(wrong or seen))

    def _difference(self, prefix: IPv4Network, hops: list[str]) -> str:
        wanted = {str(hop) for hop in self.wanted[prefix]}
        lacking, extra = sorted(wanted - set(hops)), sorted(set(hops) - wanted)
        said = f"{len(hops)} paths"
        said += f", none via {lacking[:MANY]}" if lacking else ""
        said += f", also via {extra[:MANY]}" if extra else ""
        return said


@dataclass(frozen=True)
class PrefixSentToEach:
    """The router sends `prefix` to each of these neighbors (its advertised routes per neighbor)."""

    prefix: IPv4Network
    peers: frozenset[IPv4Address]

    @property
    def expected(self) -> str:
        return f"the router sending {self.prefix} to {sorted(map(str, self.peers))}"

    def __call__(self, observed: Mapping[IPv4Address, Collection[IPv4Network]]) -> Finding:
        missing = sorted(str(peer) for peer in self.peers if self.prefix not in observed.get(peer, ()))
        sent = {str(peer): sorted(map(str, prefixes)) for peer, prefixes in observed.items()}
        shown = f"not sent to {missing}; sent: {sent}" if missing else f"sent: {sent}"
        return Finding(not missing, self.expected, shown)


@dataclass(frozen=True)
class EachPrefixFromItsNode:
    """The router has each prefix from the node it belongs to (a path with that node as next hop),
    whatever other paths it also has: what a node advertises, as the router received it."""

    owners: Mapping[IPv4Network, IPv4Address]

    @property
    def expected(self) -> str:
        return ", ".join(f"{prefix} received from {node}" for prefix, node in self.owners.items())

    def __call__(self, observed: Mapping[IPv4Network, Collection[IPv4Address]]) -> Finding:
        missing = {
            str(prefix): sorted(map(str, observed.get(prefix, ())))
            for prefix, node in self.owners.items()
            if node not in observed.get(prefix, ())
        }
        seen = {str(prefix): sorted(map(str, hops)) for prefix, hops in observed.items()}
        return Finding(
            not missing,
            self.expected,
            f"missing, with the next hops seen: {missing}" if missing else str(seen),
        )


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The newest condition of that type (1.13-1.14 append conditions rather than update them)."""
    found = [c for c in obj.get("status", {}).get("conditions", []) if c.get("type") == kind]
    return found[-1] if found else {}


def condition(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return dict(_condition(obj, kind))


@dataclass(frozen=True)
class PoolConflict:
    """An LB IP pool's conflict condition has `status` ("True": marked conflicting)."""

    pool: str
    condition_type: str
    status: str

    @property
    def expected(self) -> str:
        return f"pool {self.pool} condition {self.condition_type}={self.status}"

    def __call__(self, observed: Mapping[str, Any]) -> Finding:
        found = _condition(observed, self.condition_type)
        shown = repr(dict(found)) if found else "no such condition"
        return Finding(found.get("status") == self.status, self.expected, shown)


@dataclass(frozen=True)
class ServicesWithoutAddress:
    """None of these services holds an LB address; observed: service -> its addresses ("" for none)."""

    services: frozenset[str]

    @property
    def expected(self) -> str:
        return f"no external IP on {', '.join(sorted(self.services))}"

    def __call__(self, observed: Mapping[str, str]) -> Finding:
        given = {name: observed[name] for name in sorted(self.services) if observed.get(name)}
        shown = ", ".join(f"{name} {address}" for name, address in given.items()) or "none has one"
        return Finding(not given, self.expected, shown)


@dataclass(frozen=True)
class AgentsReplaced:
    """Every node runs a new agent pod and none of the `before` pods is left (a config change's restart)."""

    before: frozenset[str]
    nodes: frozenset[str]

    @property
    def expected(self) -> str:
        nodes, before = sorted(self.nodes), sorted(self.before)
        return f"a new Cilium agent running on each of {nodes}, none of {before} left"

    def __call__(self, observed: Sequence[PodView]) -> Finding:
        left = sorted(v.name for v in observed if v.name in self.before)
        new = {v.node: f"{v.name} {v.status}" for v in observed if v.name not in self.before}
        running = {v.node for v in observed if v.name not in self.before and v.status == "Running"}
        shown = f"old pods left: {left}; new pods by node: {dict(sorted(new.items()))}"
        return Finding(not left and self.nodes <= running, self.expected, shown)


@dataclass(frozen=True)
class PodsReplaced:
    """None of the `before` pods is left and as many new ones run ready (a Deployment's pods deleted)."""

    what: str
    before: frozenset[str]

    @property
    def expected(self) -> str:
        count, before = len(self.before), sorted(self.before)
        return f"{self.what}: {count} new pod(s) running and ready, none of {before} left"

    def __call__(self, observed: Sequence[PodView]) -> Finding:
        left = sorted(v.name for v in observed if v.name in self.before)
        new = [v for v in observed if v.name not in self.before]
        ready = [v for v in new if v.running_and_ready]
        shown = f"old pods left: {left}; new pods: {[f'{v.name} {v.ready} {v.status}' for v in new]}"
        return Finding(not left and len(ready) >= len(self.before) > 0, self.expected, shown)


@dataclass(frozen=True)
class PodsUntouched:
    """The same pods as before, none restarted: names and restart counts unchanged."""

    what: str
    before: Mapping[str, int]  # pod name -> restarts

    @property
    def expected(self) -> str:
        return f"{self.what} untouched: {dict(sorted(self.before.items()))} (pod -> restarts)"

    def __call__(self, observed: Sequence[PodView]) -> Finding:
        now = {v.name: v.restarts for v in observed}
        shown = f"{dict(sorted(now.items()))} (pod -> restarts)"
        return Finding(now == dict(self.before), self.expected, shown)


@dataclass(frozen=True)
class SettingOnEveryNode:
    """A Cilium setting has `value` on every node, per-node overrides included."""

    key: str
    value: str

    @property
    def expected(self) -> str:
        return f"{self.key}={self.value} on every node: in cilium-config, no CiliumNodeConfig overriding it"

    def __call__(self, observed: Mapping[str, Setting]) -> Finding:
        shown = {node: f"{s.value!r} from {s.source}" for node, s in sorted(observed.items())}
        holds = bool(observed) and all(s.value == self.value for s in observed.values())
        return Finding(holds, self.expected, repr(shown))


@dataclass(frozen=True)
class NothingCountedOffSession:
    """A session that is not established has sent and received nothing, so `cilium bgp peers` counts
    zero routes on it (walkthrough: `active ... 0 0`; #39861 counted advertised routes there)."""

    nodes: frozenset[str]

    @property
    def expected(self) -> str:
        return f"received 0 and advertised 0 on every session not established, on {sorted(self.nodes)}"

    def __call__(self, observed: Mapping[str, Sequence[CiliumPeer]]) -> Finding:
        counted = {
            node: peers
            for node, peers in observed.items()
            if node in self.nodes
            and any(
                peer.session_state is not SessionState.ESTABLISHED
                and any(f.received or f.advertised for f in peer.families)
                for peer in peers
            )
        }
        shown = bgp_peers_table(counted) if counted else bgp_peers_table(observed)
        return Finding(not counted, self.expected, shown)
