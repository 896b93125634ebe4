"""Typed topology: the single description of machines, addresses and BGP settings that every step reads.

Validation is strict (no silent coercion of "8080" to 8080 or of `yes` to a label value) because a
topology that is almost right produces failures far from their cause: a session that never comes up,
a route that goes nowhere. Every check raises `Invalid`, which carries a message and a fix per problem
so the loader can print them against YAML line numbers instead of pydantic's wording.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from bgpconform.cilium import bgp_api, upgrades
from bgpconform.cilium.bgp_api import BgpApi
from bgpconform.errors import ConfigError
from bgpconform.topology.fields import (
    Address,
    AppLabel,
    Asn,
    CiliumCliVersion,
    CiliumVersion,
    ConnectRetry,
    EnvName,
    HoldTime,
    Image,
    Interface,
    Invalid,
    Issue,
    K3sVersion,
    Keepalive,
    Label,
    LabelKey,
    Labels,
    Loc,
    Network,
    NonEmpty,
    PoolCidrs,
    Port,
    RouterOsVersion,
    Seconds,
    Selector,
    ServiceName,
    Subdomain,
    at_least_one,
    format_loc,
)

SHIPPED_EXAMPLE = "topologies/lab.yaml"
# Cilium's default cluster-pool IPAM CIDR (FACTS.md, "What a real cluster does that a lab may not").
CILIUM_DEFAULT_CLUSTER_POOL = IPv4Network("10.0.0.0/8")

# --- models ------------------------------------------------------------------------------------------


class _Model(BaseModel):
    # strict: YAML already yields typed values, so a string where a number belongs is a mistake to report.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Cluster(_Model):
    """Name and versions, so that the lab builds, and the checks expect, what the walkthrough used."""

    name: Label = Field(examples=["k3s-rpi"])
    node_subnet: Network = Field(examples=["192.168.1.0/24"])
    k3s_version: K3sVersion = "v1.27.3+k3s1"
    cilium_version: CiliumVersion = "1.13.4"
    # The cilium-cli release whose operations the harness performs (`bgpconform.cilium.cli_versions`):
    # from v0.18.7 `cilium config set` restarts the operator as well as the agents (FACTS.md).
    cilium_cli_version: CiliumCliVersion = "0.15.4"
    # The release features/7_upgrade.feature upgrades to, one minor at a time (`bgpconform.cilium.upgrades`);
    # unset: that feature does not apply.
    upgrade_to: CiliumVersion | None = Field(default=None, examples=["1.19.1"])
    # Real targets: the kubeconfig (relative to this file; unset: $KUBECONFIG, then ~/.kube/config) and
    # the context the cluster is known by there. Install mode runs only when the context in use is this one.
    kubeconfig: NonEmpty | None = None
    context: NonEmpty | None = None
    # Cilium's cluster-pool IPAM: the CIDR the install hands it (`ipam.operator.clusterPoolIPv4PodCIDRList`)
    # and the block each node gets. Unset: Cilium's default 10.0.0.0/8 and whatever the cluster has.
    pod_cidr_pool: Network | None = Field(default=None, examples=["10.136.0.0/16"])
    pod_cidr_mask_size: int = Field(default=24, ge=8, le=30)

    @property
    def cluster_pool(self) -> IPv4Network:
        """The cluster-pool CIDR in force: the topology's, else Cilium's default (FACTS.md)."""
        return self.pod_cidr_pool or CILIUM_DEFAULT_CLUSTER_POOL

    def kubeconfig_path(self, topology_file: Path) -> Path | None:
        """The declared kubeconfig, `~` expanded and read relative to the topology file's folder."""
        if self.kubeconfig is None:
            return None
        path = Path(self.kubeconfig).expanduser()
        return path if path.is_absolute() else topology_file.parent / path


class Node(_Model):
    """One machine. Its pod CIDR is Cilium's IPAM's choice, read from the cluster; `pod_cidr` is only
    what the harness assumes for a node whose cluster shows none (`StageMachine.pod_cidrs`)."""

    name: Label = Field(examples=["k3s-worker-node-01"])
    role: Literal["control-plane", "worker"] = Field(examples=["worker"])
    address: Address = Field(examples=["192.168.1.201"])
    labels: Labels = Field(default_factory=dict)
    pod_cidr: Network | None = Field(default=None, examples=["10.136.1.0/24"])


class Management(_Model):
    """Where the harness reaches the router's API (RouterOS: 8728 plain, 8729 TLS)."""

    host: NonEmpty = Field(examples=["192.168.1.1"])
    port: Port = Field(examples=[8728])
    tls: bool = False
    verify_tls: bool = True


class Vtysh(_Model):
    """Where an FRR router's vtysh runs for a real target: over SSH (keys only), in a local network
    namespace, or on this machine when both are unset."""

    ssh: NonEmpty | None = Field(default=None, examples=["frr@192.168.1.1"])
    namespace: NonEmpty | None = None
    vty_socket: NonEmpty | None = None  # vtysh --vty_socket, for an FRR started with its own socket folder
    sudo: bool = False

    @model_validator(mode="after")
    def _one_place(self) -> Vtysh:
        if self.ssh is not None and self.namespace is not None:
            raise Invalid.one(
                "both ssh and namespace are set",
                "keep ssh for a router reached over SSH, or namespace for one in a namespace on this machine",
                at=("ssh",),
            )
        return self


class Credentials(_Model):
    """Names of environment variables, so that topology files can be shared and committed safely."""

    username_env: EnvName = Field(examples=["BGPCONFORM_ROUTER_USER"])
    password_env: EnvName = Field(examples=["BGPCONFORM_ROUTER_PASSWORD"])

    def hint(self) -> str:
        """How messages name the login without showing it."""
        return f"${self.username_env} and ${self.password_env}"

    def resolve(self, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
        """Read the secrets late, at connect time, so loading a topology never needs them."""
        env = os.environ if environ is None else environ
        missing = [name for name in (self.username_env, self.password_env) if name not in env]
        if missing:
            names = " and ".join(missing)
            verb = "variable {} is" if len(missing) == 1 else "variables {} are"
            raise ConfigError(
                f"router.credentials: environment {verb.format(names)} not set; "
                f"fix: export {' and '.join(f'{n}=...' for n in missing)} before running the harness"
            )
        return env[self.username_env], env[self.password_env]


FRESH_CHR_LOGIN = ("admin", "")  # a freshly installed CHR (FACTS.md, RouterOS)


def _routeros_version(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in value.split("."))


class Router(_Model):
    """The BGP peer of the nodes and the gateway of the outside client."""

    kind: Literal["frr", "routeros"] = Field(examples=["frr"])
    name: Label = "router"
    address: Address = Field(examples=["192.168.1.1"])
    asn: Asn = Field(examples=[64512])
    north_address: Interface = Field(examples=["198.51.100.1/24"])
    management: Management | None = None
    vtysh: Vtysh | None = None
    credentials: Credentials | None = None
    ecmp: bool = True
    routeros_version: RouterOsVersion = "7.8"
    # How the router names the connection to the n-th peering node; the walkthrough's names by default.
    connection_name: str = "PEER_TO_K3S_WN_{index}"

    def fresh_login(self, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
        """The login of a router the run starts itself (the lab's, a k3d CHR): the topology's variables
        when both are set, a fresh CHR's when neither is (user `admin`, empty password; FACTS.md), so
        such a run needs no secret. A real router is always logged into with `credentials.resolve`."""
        env = os.environ if environ is None else environ
        if self.credentials is None:
            return FRESH_CHR_LOGIN
        names = (self.credentials.username_env, self.credentials.password_env)
        present = [name for name in names if name in env]
        if not present:
            return FRESH_CHR_LOGIN
        if len(present) == 1:
            missing = names[1] if present[0] == names[0] else names[0]
            raise ConfigError(
                f"router.credentials: {present[0]} is set but {missing} is not; fix: export both, or unset "
                "both to use the default login of a router the run starts (admin, empty password)"
            )
        return self.credentials.resolve(env)

    def credentials_hint(self) -> str:
        """How messages name the login without showing it."""
        return "the router credentials" if self.credentials is None else self.credentials.hint()

    def connection_name_for(self, index: int, node: str) -> str:
        """The router-side name of the connection to a peering node (`index` counts from 1)."""
        return self.connection_name.format(index=index, node=node)

    @model_validator(mode="after")
    def _consistent(self) -> Router:
        issues: list[Issue] = []
        try:
            self.connection_name_for(1, "node")
        except (KeyError, IndexError, ValueError):
            issues.append(
                Issue(
                    ("connection_name",),
                    f"{self.connection_name!r} is not a valid name template",
                    "use only the placeholders {index} and {node}, e.g. PEER_TO_{node}",
                )
            )
        if self.kind == "routeros" and self.credentials is None:
            issues.append(
                Issue(
                    ("credentials",),
                    "required when kind is 'routeros'",
                    "add credentials: {username_env: BGPCONFORM_ROUTER_USER, "
                    "password_env: BGPCONFORM_ROUTER_PASSWORD} and export those variables",
                )
            )
        if self.kind == "frr" and self.management is not None:
            issues.append(
                Issue(
                    ("management",),
                    "is the RouterOS API; an FRR router is reached through vtysh",
                    "remove management and add vtysh: {ssh: user@host} (or {namespace: NAME})",
                )
            )
        if self.kind == "routeros" and self.vtysh is not None:
            issues.append(
                Issue(
                    ("vtysh",),
                    "is for FRR; a RouterOS router is reached through its API",
                    "remove vtysh and add management: {host: ..., port: 8728}",
                )
            )
        if self.kind == "routeros" and self.ecmp and _routeros_version(self.routeros_version) < (7, 22):
            issues.append(
                Issue(
                    ("ecmp",),
                    f"RouterOS {self.routeros_version} has no BGP multipath (it came in 7.22): "
                    "only one of several equal paths is active",
                    "set ecmp: false, or routeros_version to 7.22 or later if the router runs it",
                )
            )
        if issues:
            raise Invalid(issues)
        return self


class BgpTimers(_Model):
    """Short timers so lab sessions come up and fail over in seconds; Cilium itself takes them from 1.14."""

    connect_retry: ConnectRetry = 1
    hold: HoldTime = 9
    keepalive: Keepalive = 3

    @model_validator(mode="after")
    def _keepalive_within_hold(self) -> BgpTimers:
        if self.keepalive > self.hold:
            raise Invalid.one(
                f"keepalive {self.keepalive} is longer than hold {self.hold}",
                "use a keepalive of at most the hold time, usually a third of it",
                at=("keepalive",),
            )
        return self


class Bgp(_Model):
    """The BGP configuration the harness applies (a CiliumBGPPeeringPolicy, or the BGPv2 cluster config,
    peer config and advertisement), and which nodes it selects."""

    node_asn: Asn = Field(examples=[64512])
    peer_asn: Asn = Field(examples=[64512])
    node_selector: Selector = Field(examples=["{bgp-policy: a}"])
    peer_nodes: list[Label] | None = None
    policy_name: Subdomain = "01-bgp-peering-policy"
    export_pod_cidr: bool = True
    timers: BgpTimers = Field(default_factory=BgpTimers)
    # v1 or v2; unset: what the Cilium version defaults to (`bgpconform.cilium.bgp_api`).
    api: Literal["v1", "v2"] | None = Field(default=None, examples=["v2"])


class SelectorTerm(_Model):
    """One `matchExpressions` term of a Kubernetes label selector."""

    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[AppLabel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> SelectorTerm:
        if self.operator in ("In", "NotIn") and not self.values:
            raise Invalid.one(f"{self.operator} without values", "list at least one value, or use Exists")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise Invalid.one(f"{self.operator} with values", "drop values: the operator only tests the key")
        return self


class ServiceSelector(_Model):
    """A pool's `serviceSelector` (Cilium's field, in the topology's snake case): which services it serves."""

    match_labels: Labels = Field(default_factory=dict, examples=["{bgpconform.io/scale-pool: a}"])
    match_expressions: list[SelectorTerm] = Field(default_factory=list)

    def as_kubernetes(self) -> dict[str, object]:
        selector: dict[str, object] = {}
        if self.match_labels:
            selector["matchLabels"] = dict(self.match_labels)
        if self.match_expressions:
            selector["matchExpressions"] = [
                {
                    "key": term.key,
                    "operator": term.operator,
                    **({"values": term.values} if term.values else {}),
                }
                for term in self.match_expressions
            ]
        return selector


class LbPool(_Model):
    """A CiliumLoadBalancerIPPool; pools may overlap each other on purpose, to test conflict marking."""

    name: Subdomain = Field(examples=["lb-pool"])
    cidrs: PoolCidrs = Field(examples=["[172.198.1.0/24]"])
    # unset: the pool serves every service (Cilium's nil serviceSelector, FACTS.md "Cilium: LB IPAM")
    service_selector: ServiceSelector | None = None


class Scale(_Model):
    """The scale check (`features/8_scale.feature`): the run's own LoadBalancer services, copies of the
    workload's service under other names, created and removed `batch` at a time, each to be announced
    by every peering node and reached from outside. Nothing of the user's is touched, so verify mode
    runs it too. `pools` spreads them round robin over those topology pools, each service carrying its
    pool's `match_labels`; unset, Cilium picks the pool. `converge` bounds each wait of the check:
    a batch's addresses, every route, every answer, a batch's removal, every withdrawal."""

    services: int = Field(default=500, ge=1, le=5000)
    batch: int = Field(default=50, ge=1, le=500)
    pools: list[Subdomain] = Field(default_factory=list, examples=["[scale-pool-a, scale-pool-b]"])
    converge: Seconds = 120.0


class Workload(_Model):
    """The walkthrough's nginx pod and LoadBalancer service, the thing the client must reach."""

    namespace: Label = "default"
    pod_name: Subdomain = "simple-pod"
    app_label: AppLabel = "simple-pod"
    image: Image = "nginx:latest"
    service_name: ServiceName = "my-service"
    port: Port = 8080
    target_port: Port = 80
    protocol: Literal["TCP"] = "TCP"


class Client(_Model):
    """The outside machine north of the router that must reach the service only through BGP routes."""

    name: Label = "client"
    address: Interface = Field(examples=["198.51.100.10/24"])
    gateway: Address = Field(examples=["198.51.100.1"])
    # Real targets: where the client's requests run; this machine when both are unset.
    namespace: NonEmpty | None = None
    ssh: NonEmpty | None = Field(default=None, examples=["pi@198.51.100.10"])

    @model_validator(mode="after")
    def _gateway_on_link(self) -> Client:
        if self.ssh is not None and self.namespace is not None:
            raise Invalid.one(
                "both ssh and namespace are set",
                "keep ssh for a client reached over SSH, or namespace for one in a namespace on this machine",
                at=("ssh",),
            )
        net = self.address.network
        if self.gateway not in net:
            raise Invalid.one(
                f"{self.gateway} is outside the client network {net}",
                f"use the router's north address, which must be in {net}",
                at=("gateway",),
            )
        return self


class Waits(_Model):
    """Upper bounds in seconds for each kind of wait: a check polls until then, never sleeps a fixed time."""

    nodes_ready: Seconds = 60.0
    pods_running: Seconds = 60.0
    crd_registered: Seconds = 30.0
    # None: as long as the Cilium version's dialling needs (`bgpconform.cilium.bgp_timers`: about
    # 4.5 min on 1.13, whose nodes redial every 120-239 s); a number overrides it.
    sessions_established: Seconds | None = None
    routes: Seconds = 15.0
    ip_allocated: Seconds = 15.0
    http: Seconds = 15.0


class Disruption(_Model):
    """The traffic probe of the fault scenarios, and what they allow a fault to cost.

    The probe sends `rate` requests a second from the outside client, each a new connection that
    gives up after `request_timeout`, and samples the router every `sample_interval`; it runs for
    `baseline` seconds before the fault, so the picture shows the service as it was. A peering node
    that goes away may cost requests until the router's hold timer drops it; requests that fail after
    that, or a stretch longer than `max_gap` without any successful answer, are non-conformance.
    `max_gap` unset: the hold time plus one request's timeout, the worst a router that drops the dead
    path on time allows when every request meanwhile happens to hash to it.
    """

    rate: int = Field(default=20, ge=1, le=500)
    baseline: Seconds = 2.0
    request_timeout: Seconds = 1.0
    sample_interval: Seconds = 0.5
    max_gap: Seconds | None = None
    settle: Seconds = 2.0  # after the router withdraws a path, requests in flight on it may still fail
    # `gracefulRestart.restartTimeSeconds` when a scenario turns graceful restart on (Cilium's default)
    graceful_restart_time: int = Field(default=120, ge=1, le=4095)


class Topology(_Model):
    """A whole test bed: validated once at load so that no step has to doubt its inputs."""

    cluster: Cluster
    nodes: Annotated[
        list[Node],
        AfterValidator(at_least_one("list the machines of the cluster, as in " + SHIPPED_EXAMPLE)),
    ]
    router: Router
    bgp: Bgp
    lb_pools: Annotated[
        list[LbPool],
        AfterValidator(at_least_one("add a pool, e.g. {name: lb-pool, cidrs: [172.198.1.0/24]}")),
    ]
    workload: Workload = Field(default_factory=Workload)
    client: Client
    waits: Waits = Field(default_factory=Waits)
    disruption: Disruption = Field(default_factory=Disruption)
    scale: Scale | None = None
    source: Path = Field(exclude=True)
    digest: str = Field(exclude=True)

    # --- derived views ---------------------------------------------------------------------------

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "worker"]

    @property
    def control_planes(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "control-plane"]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.nodes)
        raise KeyError(f"no node named '{name}' in {self.source}; nodes: {known}")

    @property
    def bgp_nodes(self) -> list[Node]:
        """Peering nodes in topology order; `bgp.peer_nodes` unset means every worker peers."""
        if self.bgp.peer_nodes is None:
            return self.workers
        wanted = set(self.bgp.peer_nodes)
        return [n for n in self.nodes if n.name in wanted]

    @property
    def ibgp(self) -> bool:
        return self.bgp.node_asn == self.bgp.peer_asn

    # --- cross-checks ----------------------------------------------------------------------------

    @model_validator(mode="after")
    def _cross_checks(self) -> Topology:
        issues = [
            *self._check_roles(),
            *self._check_names(),
            *self._check_addresses(),
            *self._check_pod_cidrs(),
            *self._check_pools(),
            *self._check_bgp(),
            *self._check_upgrade(),
            *self._check_client(),
            *self._check_scale(),
        ]
        if issues:
            raise Invalid(issues)
        return self

    def _check_roles(self) -> list[Issue]:
        if self.control_planes:
            return []
        return [
            Issue(
                ("nodes",),
                "no node has role 'control-plane'",
                "add the k3s server as a node with role: control-plane",
            )
        ]

    def _check_names(self) -> list[Issue]:
        return _duplicate_names("nodes", "node", [n.name for n in self.nodes]) + _duplicate_names(
            "lb_pools", "pool", [p.name for p in self.lb_pools]
        )

    def _check_addresses(self) -> list[Issue]:
        issues: list[Issue] = []
        subnet = self.cluster.node_subnet
        south: list[tuple[Loc, IPv4Address]] = [
            (("nodes", i, "address"), n.address) for i, n in enumerate(self.nodes)
        ]
        south.append((("router", "address"), self.router.address))
        for loc, addr in south:
            what = "the router's address in" if loc[0] == "router" else "an address in"
            if addr not in subnet:
                issues.append(
                    Issue(
                        loc,
                        f"{addr} is outside cluster.node_subnet {subnet}",
                        f"use {what} {subnet} or change cluster.node_subnet",
                    )
                )
            elif subnet.prefixlen <= 30 and addr in (subnet.network_address, subnet.broadcast_address):
                kind = "network" if addr == subnet.network_address else "broadcast"
                issues.append(
                    Issue(
                        loc,
                        f"{addr} is the {kind} address of cluster.node_subnet {subnet}",
                        f"use a host address, {subnet.network_address + 1} to {subnet.broadcast_address - 1}",
                    )
                )
        everyone = [
            *south,
            (("router", "north_address"), self.router.north_address.ip),
            (("client", "address"), self.client.address.ip),
        ]
        owner: dict[IPv4Address, Loc] = {}
        for loc, addr in everyone:
            if addr in owner:
                issues.append(
                    Issue(
                        loc,
                        f"{addr} is already used by {format_loc(owner[addr])}",
                        "give each machine its own address",
                    )
                )
            else:
                owner[addr] = loc
        return issues

    def _check_pod_cidrs(self) -> list[Issue]:
        issues: list[Issue] = []
        client_net = self.client.address.network
        outside = [
            ("cluster.node_subnet", self.cluster.node_subnet),
            ("the client network (client.address)", client_net),
        ]
        pool = self.cluster.pod_cidr_pool
        if pool is not None:
            for label, net in outside:
                if pool.overlaps(net):
                    issues.append(
                        Issue(
                            ("cluster", "pod_cidr_pool"),
                            f"{pool} overlaps {label} {net}",
                            "pick a pod CIDR pool outside the node subnet and the client network",
                        )
                    )
            if self.cluster.pod_cidr_mask_size <= pool.prefixlen:
                issues.append(
                    Issue(
                        ("cluster", "pod_cidr_mask_size"),
                        f"/{self.cluster.pod_cidr_mask_size} blocks do not split {pool}",
                        f"give a mask size longer than /{pool.prefixlen}",
                    )
                )
        for i, n in enumerate(self.nodes):
            if n.pod_cidr is None:
                continue
            loc: Loc = ("nodes", i, "pod_cidr")
            if pool is not None and not n.pod_cidr.subnet_of(pool):
                issues.append(
                    Issue(
                        loc,
                        f"{n.pod_cidr} is outside cluster.pod_cidr_pool {pool}",
                        "take the node's pod CIDR from the pool, or leave it out: the cluster assigns it",
                    )
                )
                continue
            others = [
                (f"nodes[{j}].pod_cidr", m.pod_cidr) for j, m in enumerate(self.nodes[:i]) if m.pod_cidr
            ]
            for label, net in [*others, *outside]:
                if net is not None and n.pod_cidr.overlaps(net):
                    issues.append(
                        Issue(
                            loc,
                            f"{n.pod_cidr} overlaps {label} {net}",
                            "give each node its own pod CIDR, outside the node subnet and the client network",
                        )
                    )
                    break
        return issues

    def _check_pools(self) -> list[Issue]:
        issues: list[Issue] = []
        taken: list[tuple[str, IPv4Network]] = [("cluster.node_subnet", self.cluster.node_subnet)]
        taken += [(f"nodes[{j}].pod_cidr", n.pod_cidr) for j, n in enumerate(self.nodes) if n.pod_cidr]
        if self.cluster.pod_cidr_pool is not None:
            taken.append(("cluster.pod_cidr_pool", self.cluster.pod_cidr_pool))
        taken.append(("the client network (client.address)", self.client.address.network))
        for i, pool in enumerate(self.lb_pools):
            for k, cidr in enumerate(pool.cidrs):
                for label, net in taken:
                    if cidr.overlaps(net):
                        issues.append(
                            Issue(
                                ("lb_pools", i, "cidrs", k),
                                f"{cidr} overlaps {label} {net}",
                                "pick a pool CIDR outside the node subnet, "
                                "the pod CIDRs and the client network",
                            )
                        )
                        break
        return issues

    @property
    def bgp_api(self) -> BgpApi:
        """The BGP API the run configures: `bgp.api`, else the Cilium version's default."""
        requested = BgpApi(self.bgp.api) if self.bgp.api is not None else None
        return bgp_api.chosen(str(self.cluster.cilium_version), requested)

    def _check_scale(self) -> list[Issue]:
        if self.scale is None:
            return []
        issues: list[Issue] = []
        pools = {pool.name: pool for pool in self.lb_pools}
        for i, name in enumerate(self.scale.pools):
            pool = pools.get(name)
            if pool is None:
                issues.append(
                    Issue(
                        ("scale", "pools", i),
                        f"no pool named '{name}' in lb_pools",
                        f"name one of lb_pools ({', '.join(pools)}) or add a pool named '{name}'",
                    )
                )
            elif pool.service_selector is None or not pool.service_selector.match_labels:
                issues.append(
                    Issue(
                        ("scale", "pools", i),
                        f"pool '{name}' has no service_selector.match_labels to put on its services",
                        f"give lb_pools '{name}' a service_selector with match_labels, "
                        "e.g. {bgpconform.io/scale-pool: a}",
                    )
                )
        return issues

    def _check_upgrade(self) -> list[Issue]:
        target = self.cluster.upgrade_to
        if target is None:
            return []
        refused = upgrades.problem(str(self.cluster.cilium_version), str(target))
        return [] if refused is None else [Issue(("cluster", "upgrade_to"), *refused)]

    def _check_bgp(self) -> list[Issue]:
        issues: list[Issue] = []
        bgp = self.bgp
        if bgp.api is not None:
            refused = bgp_api.problem(str(self.cluster.cilium_version), BgpApi(bgp.api))
            if refused is not None:
                issues.append(Issue(("bgp", "api"), *refused))
        if bgp.peer_asn != self.router.asn:
            issues.append(
                Issue(
                    ("bgp", "peer_asn"),
                    f"{bgp.peer_asn} is not router.asn {self.router.asn}",
                    f"set bgp.peer_asn to the router's AS number, {self.router.asn}",
                )
            )
        names = [n.name for n in self.nodes]
        if bgp.peer_nodes is None:
            if not self.workers:
                issues.append(
                    Issue(
                        ("bgp",),
                        "no peering nodes: bgp.peer_nodes is unset, so every worker peers, "
                        "and there is no worker",
                        "add a worker node or list the peering nodes in bgp.peer_nodes",
                    )
                )
        elif not bgp.peer_nodes:
            issues.append(
                Issue(
                    ("bgp", "peer_nodes"),
                    "is empty, so no node would peer",
                    "list at least one node name, or remove peer_nodes so that every worker peers",
                )
            )
        else:
            listed: set[str] = set()
            for i, name in enumerate(bgp.peer_nodes):
                if name in listed:
                    issues.append(
                        Issue(("bgp", "peer_nodes", i), f"'{name}' is listed twice", "list each node once")
                    )
                elif name not in names:
                    issues.append(
                        Issue(
                            ("bgp", "peer_nodes", i),
                            f"no node named '{name}'",
                            f"use one of: {', '.join(names)}",
                        )
                    )
                listed.add(name)
        peering = {n.name for n in self.bgp_nodes}
        selector = bgp.node_selector
        for i, n in enumerate(self.nodes):
            if n.name not in peering and selector.items() <= n.labels.items():
                shown = ", ".join(f"{k}={v}" for k, v in selector.items())
                issues.append(
                    Issue(
                        ("nodes", i, "labels"),
                        f"carries bgp.node_selector ({shown}) but {n.name} is not a peering node",
                        "remove that label from the node, or add the node to bgp.peer_nodes",
                    )
                )
        return issues

    def _check_client(self) -> list[Issue]:
        issues: list[Issue] = []
        north = self.router.north_address.ip
        if self.client.gateway != north:
            issues.append(
                Issue(
                    ("client", "gateway"),
                    f"{self.client.gateway} is not router.north_address {north}",
                    f"set client.gateway to {north}",
                )
            )
        client_net = self.client.address.network
        if client_net.overlaps(self.cluster.node_subnet):
            issues.append(
                Issue(
                    ("client", "address"),
                    f"the client network {client_net} overlaps "
                    f"cluster.node_subnet {self.cluster.node_subnet}",
                    "put the client north of the router, on a network of its own such as 198.51.100.0/24",
                )
            )
        return issues


def _duplicate_names(section: str, kind: str, names: list[str]) -> list[Issue]:
    """One issue per repeated name, pointing back at where it was first used."""
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            issues.append(
                Issue(
                    (section, i, "name"),
                    f"duplicate {kind} name '{name}' (also {section}[{seen[name]}])",
                    f"give each {kind} a unique name",
                )
            )
        else:
            seen[name] = i
    return issues
