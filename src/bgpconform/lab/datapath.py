"""The service datapath Cilium's kube-proxy replacement gives each node, built from iptables NAT.

The walkthrough's cluster runs k3s without kube-proxy and Cilium with `kubeProxyReplacement=strict`
(FACTS.md, k3s and k3d): Cilium alone turns a packet for a LoadBalancer IP into one for a backend pod.
The router routes the service's /32 to any announcing node (FACTS.md: ECMP in FRR), so every node must
translate it, whether the chosen backend is local or on another node.

What each node gets, all inside its own namespace:
- nat `BGPC-SERVICES`, hooked first into PREROUTING (traffic arriving for the LB IP, which is not a
  local address) and OUTPUT (the node's own connections): one rule per service with ready backends,
  matching frontend IP, protocol and port, jumping to the service's chain.
- nat `BGPC-SVC-<hash>`, one per service: DNAT to one backend, an equal share each (`statistic
  --mode random`, probability 1/n, 1/(n-1), ... 1, as kube-proxy spreads). Its rule counters count
  new connections per backend on that node, which is how a step sees where traffic entered.
- nat `BGPC-POSTROUTING`, hooked into POSTROUTING: masquerade a translated connection that leaves
  through the uplink, i.e. to a backend on another node. That is Cilium's default SNAT mode
  (`bpf-lb-mode=snat`) for externalTrafficPolicy=Cluster: the backend sees the entering node's address
  and replies through it, so the entering node can undo both translations. A local backend is reached
  through its lxc device and sees the client's own address, as with Cilium.
- filter `BGPC-SERVICES`, hooked into FORWARD and OUTPUT: a service without ready backends drops new
  connections. Cilium does the same from 1.13 (cilium/cilium PR #22388, backported to 1.12: "Traffic
  addressed to a service IP is dropped, if no backend is available"); answering with ICMP instead
  (`--service-no-backend-response=reject`, PR #28157) came later. Without the drop, a packet for an
  announced LB IP would bounce between router and nodes until its TTL ran out.

Programming is atomic per node: one `iptables-restore --noflush` rewrites the shared dispatch chains
and the service's own chain together (a `:CHAIN` line flushes a chain even with --noflush), so a node
never holds half a service. Nodes are programmed one after another, as each Cilium agent programs its
own node independently; a `ServiceDatapath` given `nodes` owns only those (the emulated agent owns
its own node's).

The rules outlive the object, as Cilium's BPF maps outlive an agent restart: a fresh object (the next
agent) takes over a node's chains without a gap. Its first write to a node reads the node's existing
`BGPC-SVC-*` chains and deletes those it does not hold, and `sync` replaces the whole set at once.

Deviations from Cilium, none of which a step can observe from outside: Cilium translates in eBPF at
the device (tc/XDP) with its own connection tracking, Maglev or random backend selection and socket LB
for the node's own connections; here it is netfilter DNAT/MASQUERADE with kernel conntrack. Existing
connections keep their backend after a change here (conntrack keeps its translation), where Cilium
1.13 also drops established flows of a service that lost its last backend (fixed by PR #31840).
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Literal

from bgpconform.commands import run
from bgpconform.errors import CommandError, LabError
from bgpconform.lab.netns import ns_argv
from bgpconform.lab.network import UPLINK, LabNetwork

SERVICES_CHAIN = "BGPC-SERVICES"
POSTROUTING_CHAIN = "BGPC-POSTROUTING"
SERVICE_CHAIN_PREFIX = "BGPC-SVC-"
# Built-in chain -> our chain, per table; inserted first so nothing earlier can shadow a service.
HOOKS: dict[str, list[tuple[str, str]]] = {
    "nat": [("PREROUTING", SERVICES_CHAIN), ("OUTPUT", SERVICES_CHAIN), ("POSTROUTING", POSTROUTING_CHAIN)],
    "filter": [("FORWARD", SERVICES_CHAIN), ("OUTPUT", SERVICES_CHAIN)],
}
_SERVICE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_COUNTED_DNAT = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) .*--to-destination (\d+\.\d+\.\d+\.\d+):(\d+)")


@dataclass(frozen=True, order=True)
class Backend:
    """A ready endpoint of a service: pod IP and container port."""

    ip: IPv4Address
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServiceEntry:
    """One service as programmed: frontend (LB IP, port, protocol) and its backends, sorted."""

    service: str
    frontend: IPv4Address
    port: int
    protocol: Literal["TCP"]
    backends: tuple[Backend, ...]

    @property
    def chain(self) -> str:
        return service_chain(self.service)

    @property
    def match(self) -> str:
        """The iptables match for the frontend; one place so dispatch, SNAT and drop agree."""
        return f"-d {self.frontend}/32 -p tcp -m tcp --dport {self.port}"


@functools.lru_cache(maxsize=65536)
def service_chain(service: str) -> str:
    """A stable chain name per service, short enough for iptables' 28-character limit."""
    digest = hashlib.sha256(service.encode()).hexdigest()[:12].upper()
    return f"{SERVICE_CHAIN_PREFIX}{digest}"


def render_service_rules(entry: ServiceEntry) -> list[str]:
    """The service chain's rules: each backend an equal share of new connections."""
    rules = []
    count = len(entry.backends)
    for index, backend in enumerate(entry.backends):
        comment = f'-m comment --comment "{entry.service} -> {backend}"'
        remaining = count - index
        spread = f" -m statistic --mode random --probability {1 / remaining:.10f}" if remaining > 1 else ""
        rules.append(f"-A {entry.chain} -p tcp {comment}{spread} -j DNAT --to-destination {backend}")
    return rules


def render_restore(
    services: Sequence[ServiceEntry],
    *,
    rewrite: Sequence[ServiceEntry] = (),
    delete: Sequence[str] = (),
    missing_hooks: dict[str, list[tuple[str, str]]] | None = None,
) -> str:
    """One iptables-restore input: the shared chains for `services`, plus the chains to rewrite or delete."""
    hooks = missing_hooks or {}
    nat = [f":{SERVICES_CHAIN} - [0:0]", f":{POSTROUTING_CHAIN} - [0:0]"]
    nat += [f":{entry.chain} - [0:0]" for entry in rewrite]
    nat += [f":{chain} - [0:0]" for chain in delete]
    nat += [f"-I {builtin} 1 -j {ours}" for builtin, ours in hooks.get("nat", [])]
    for entry in services:
        if entry.backends:
            nat.append(
                f'-A {SERVICES_CHAIN} {entry.match} -m comment --comment "{entry.service}" -j {entry.chain}'
            )
            nat.append(
                f"-A {POSTROUTING_CHAIN} -o {UPLINK} -p tcp -m conntrack --ctstate DNAT "
                f"--ctorigdst {entry.frontend} --ctorigdstport {entry.port} "
                f'-m comment --comment "{entry.service}: to a backend on another node" -j MASQUERADE'
            )
    for entry in rewrite:
        nat += render_service_rules(entry)
    nat += [f"-X {chain}" for chain in delete]
    filtering = [f":{SERVICES_CHAIN} - [0:0]"]
    filtering += [f"-I {builtin} 1 -j {ours}" for builtin, ours in hooks.get("filter", [])]
    filtering += [
        f'-A {SERVICES_CHAIN} {entry.match} -m comment --comment "{entry.service} has no backends" -j DROP'
        for entry in services
        if not entry.backends
    ]
    return "\n".join(["*nat", *nat, "COMMIT", "*filter", *filtering, "COMMIT", ""])


class ServiceDatapath:
    """Programs LoadBalancer services into nodes of a lab, as each node's Cilium agent would.

    It owns the BGPC chains of its nodes (every node of the lab by default, or `nodes`, e.g. the one
    node of an emulated agent) and rewrites the shared ones from what it holds.
    """

    def __init__(self, network: LabNetwork, nodes: Sequence[str] | None = None) -> None:
        self.network = network
        if nodes is not None:
            unknown = sorted(set(nodes) - set(network.node_ns))
            if unknown:
                raise LabError(f"no such lab nodes: {', '.join(unknown)}")
        self.nodes: tuple[str, ...] = tuple(nodes) if nodes is not None else tuple(network.node_ns)
        self._services: dict[str, ServiceEntry] = {}
        self._hooked: set[str] = set()
        self._lock = threading.Lock()

    def _namespaces(self) -> dict[str, str]:
        """Owned node -> its namespace."""
        return {node: self.network.node_ns[node] for node in self.nodes}

    @property
    def services(self) -> dict[str, ServiceEntry]:
        with self._lock:
            return dict(self._services)

    def program(
        self,
        service: str,
        frontend_ip: IPv4Address,
        port: int,
        protocol: Literal["TCP"] = "TCP",
        backends: Sequence[tuple[IPv4Address, int]] = (),
    ) -> ServiceEntry:
        """Make every node translate `frontend_ip:port` to one of `backends`; an empty list drops.

        Idempotent: programming what is already there touches no node, so counters keep counting.
        """
        entry = make_entry(service, frontend_ip, port, protocol, backends)
        with self._lock:
            if self._services.get(service) == entry:
                return entry
            _check_frontends([*self._services.values(), entry], entry)
            wanted = {**self._services, service: entry}
            self._apply(list(wanted.values()), rewrite=[entry], delete=[])
            self._services = wanted
        return entry

    def remove(self, service: str) -> None:
        """Remove a service from every node; removing one that is not there does nothing."""
        with self._lock:
            if service not in self._services:
                return
            wanted = {key: entry for key, entry in self._services.items() if key != service}
            self._apply(list(wanted.values()), rewrite=[], delete=[service_chain(service)])
            self._services = wanted

    def sync(self, entries: Sequence[ServiceEntry]) -> None:
        """Make the nodes hold exactly `entries` (see `make_entry`), in one restore per node.

        Services whose entry is unchanged keep their chains and counters; the rest are rewritten, and
        services not in `entries` are removed. Nothing is written when nothing changed.
        """
        wanted = {entry.service: entry for entry in entries}
        if len(wanted) != len(entries):
            raise LabError("sync: a service key appears twice")
        holders: dict[tuple[IPv4Address, int], str] = {}
        for entry in entries:
            holder = holders.setdefault((entry.frontend, entry.port), entry.service)
            if holder != entry.service:
                raise LabError(f"{entry.frontend}:{entry.port} is already the frontend of {holder}")
        with self._lock:
            if wanted == self._services and self._hooked.issuperset(self._namespaces().values()):
                return
            rewrite = [entry for key, entry in wanted.items() if self._services.get(key) != entry]
            delete = [service_chain(key) for key in self._services if key not in wanted]
            self._apply(list(wanted.values()), rewrite=rewrite, delete=delete)
            self._services = wanted

    def _apply(self, services: list[ServiceEntry], *, rewrite: list[ServiceEntry], delete: list[str]) -> None:
        for node, namespace in self._namespaces().items():
            node_delete = list(delete)
            missing = None
            if namespace not in self._hooked:
                # First write to this node by this object: take over what an earlier one left there.
                missing = _missing_hooks(namespace)
                keep = {entry.chain for entry in services}
                node_delete += sorted(_service_chains(namespace) - keep - set(delete))
            text = render_restore(services, rewrite=rewrite, delete=node_delete, missing_hooks=missing)
            try:
                run(ns_argv(namespace, ["iptables-restore", "-w", "--noflush"]), input_text=text)
            except CommandError as exc:
                raise LabError(f"programming services on {node} failed; input was:\n{text}\n{exc}") from exc
            self._hooked.add(namespace)

    def translations(self, service: str) -> dict[str, dict[Backend, int]]:
        """Per node, new connections translated to each backend since the service was last programmed."""
        chain = service_chain(service)
        counts: dict[str, dict[Backend, int]] = {}
        for node, namespace in self._namespaces().items():
            per_backend: dict[Backend, int] = {}
            for line in _save(namespace, counters=True).splitlines():
                found = _COUNTED_DNAT.match(line)
                if found and found.group(3) == chain:
                    backend = Backend(IPv4Address(found.group(4)), int(found.group(5)))
                    per_backend[backend] = per_backend.get(backend, 0) + int(found.group(1))
            counts[node] = per_backend
        return counts

    def entries(self, service: str) -> dict[str, int]:
        """Per node, how many new connections for the service entered (and were translated) there."""
        return {node: sum(per.values()) for node, per in self.translations(service).items()}

    def dump(self) -> dict[str, str]:
        """Every node's nat and filter tables with counters, for evidence."""
        return {node: _save(namespace, counters=True) for node, namespace in self._namespaces().items()}


def make_entry(
    service: str,
    frontend_ip: IPv4Address,
    port: int,
    protocol: str = "TCP",
    backends: Sequence[tuple[IPv4Address, int]] = (),
) -> ServiceEntry:
    """A validated entry: TCP only, a namespace/name-like key, backends deduplicated and sorted."""
    if protocol != "TCP":
        raise LabError(f"service {service}: only TCP is emulated, not {protocol}")
    if not _SERVICE_KEY.match(service):
        raise LabError(f"service key {service!r} must look like namespace/name")
    return ServiceEntry(
        service=service,
        frontend=IPv4Address(frontend_ip),
        port=port,
        protocol="TCP",
        backends=tuple(sorted({Backend(IPv4Address(ip), p) for ip, p in backends})),
    )


def _check_frontends(entries: Sequence[ServiceEntry], entry: ServiceEntry) -> None:
    """Two services cannot share a frontend: the dispatch chain would only ever reach the first."""
    for other in entries:
        if other.service != entry.service and (other.frontend, other.port) == (entry.frontend, entry.port):
            raise LabError(f"{entry.frontend}:{entry.port} is already the frontend of {other.service}")


def _save(namespace: str, *, counters: bool = False) -> str:
    argv = ["iptables-save"] + (["-c"] if counters else [])
    return run(ns_argv(namespace, argv)).stdout


def _service_chains(namespace: str) -> set[str]:
    """The `BGPC-SVC-*` chains a node's nat table holds, whoever created them."""
    chains: set[str] = set()
    table = ""
    for line in _save(namespace).splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif table == "nat" and line.startswith(f":{SERVICE_CHAIN_PREFIX}"):
            chains.add(line[1:].split()[0])
    return chains


def _missing_hooks(namespace: str) -> dict[str, list[tuple[str, str]]]:
    """The hooks a node lacks, read once per node so a second datapath object never doubles them."""
    saved = _save(namespace)
    table = ""
    present: set[tuple[str, str, str]] = set()
    for line in saved.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith("-A ") and line.split()[2:] in (
            ["-j", SERVICES_CHAIN],
            ["-j", POSTROUTING_CHAIN],
        ):
            present.add((table, line.split()[1], line.split()[3]))
    return {
        table: [(builtin, ours) for builtin, ours in hooks if (table, builtin, ours) not in present]
        for table, hooks in HOOKS.items()
    }
