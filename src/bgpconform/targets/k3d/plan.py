"""Everything the k3d target will do, as data: what `--dry-run` prints and what the tests check.

One plan per run, computed from the topology alone, so it can be read before anything is created:
host preparation (a shared bpffs, FACTS.md "k3s and k3d"), the Docker networks (the nodes' subnet,
with the router's address kept out of Docker's range, and the client's network north of the router),
the k3d cluster with the k3s flags Cilium needs, the CHR and client containers, the Cilium install,
the router's configuration for the RouterOS version under test, and the teardown that always runs.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, collapse_addresses, summarize_address_range

from bgpconform.cilium.install import CiliumValues, cilium_install_command
from bgpconform.errors import ConfigError, HarnessError
from bgpconform.routers.port import topology_peers
from bgpconform.routers.routeros.commands import Change, plan_peers
from bgpconform.routers.routeros.dialect import Dialect
from bgpconform.targets.options import TargetOptions
from bgpconform.topology import Topology

DEFAULT_CHR_IMAGE = "evilfreelancer/docker-routeros"  # QEMU inside; boots in 30-60 s (FACTS.md)
DEFAULT_CLIENT_IMAGE = "curlimages/curl:8.8.0"
API_PORT = 8728
K3D_API_PORT = 6550  # the Kubernetes API, published on 127.0.0.1
# k3s for Cilium with kube-proxy replacement (FACTS.md "k3s and k3d"), given to the servers only.
K3S_SERVER_FLAGS = (
    "--flannel-backend=none",
    "--disable-network-policy",
    "--disable=traefik,servicelb,metrics-server",
    "--disable-kube-proxy",
)
BPFFS_VOLUME = "/sys/fs/bpf:/sys/fs/bpf:shared"


@dataclass(frozen=True)
class ContainerSpec:
    """A container the target starts through testcontainers, as `docker run` would take it."""

    name: str
    image: str
    networks: dict[str, str]  # network -> fixed address
    capabilities: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    published: dict[int, str] = field(default_factory=dict)  # container port -> host address
    command: tuple[str, ...] = ()
    ready_when: str = ""

    def docker_run(self) -> list[str]:
        network, address = next(iter(self.networks.items()))
        argv = ["docker", "run", "-d", "--name", self.name, "--network", network, "--ip", address]
        argv += [f"--cap-add={cap}" for cap in self.capabilities]
        argv += [f"--device={device}" for device in self.devices]
        argv += [f"--publish={host}::{port}" for port, host in self.published.items()]
        return [*argv, self.image, *self.command]

    def later_networks(self) -> list[list[str]]:
        return [
            ["docker", "network", "connect", "--ip", address, network, self.name]
            for network, address in list(self.networks.items())[1:]
        ]


@dataclass(frozen=True)
class K3dPlan:
    run_name: str
    host: list[list[str]]
    networks: list[list[str]]
    cluster: list[str]
    containers: list[ContainerSpec]
    client_setup: list[list[str]]
    cilium: list[str]
    router: list[Change]
    teardown: list[list[str]]
    notes: list[str]

    def render(self) -> str:
        """The dry run: every command, container and router change, in the order they happen."""
        lines = [f"# k3d plan for run {self.run_name}", "", "## host (bpffs shared with the node containers)"]
        lines += [shlex.join(argv) for argv in self.host]
        lines += ["", "## networks"] + [shlex.join(argv) for argv in self.networks]
        lines += ["", "## cluster", shlex.join(self.cluster)]
        lines += ["", "## containers (testcontainers)"]
        for spec in self.containers:
            lines.append(shlex.join(spec.docker_run()))
            lines += [shlex.join(argv) for argv in spec.later_networks()]
            if spec.ready_when:
                lines.append(f"#   ready when: {spec.ready_when}")
        lines += ["", "## outside client"] + [shlex.join(argv) for argv in self.client_setup]
        lines += ["", "## Cilium", shlex.join(self.cilium)]
        lines += ["", "## router (RouterOS API)"] + [change.cli() for change in self.router]
        lines += ["", "## teardown (always, also on failure)"] + [shlex.join(argv) for argv in self.teardown]
        if self.notes:
            lines += ["", "## notes"] + [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"


def k3s_image(k3s_version: str) -> str:
    """`v1.27.3+k3s1` is published as `rancher/k3s:v1.27.3-k3s1` (Docker tags take no `+`)."""
    return f"rancher/k3s:{k3s_version.replace('+', '-')}"


def _covering(addresses: list[IPv4Address]) -> IPv4Network:
    """The smallest single network holding every node address: Docker's `--ip-range` for the nodes."""
    low, high = min(addresses), max(addresses)
    network = next(iter(collapse_addresses(summarize_address_range(low, high))))
    while not all(address in network for address in addresses):
        network = network.supernet()
    return network


def k3d_plan(
    topology: Topology,
    run_name: str,
    *,
    routeros_version: str | None = None,
    chr_image: str = DEFAULT_CHR_IMAGE,
    client_image: str = DEFAULT_CLIENT_IMAGE,
    installer: str = "cilium",
    kvm: bool = True,
    cilium_version: str | None = None,
) -> K3dPlan:
    version = routeros_version or topology.router.routeros_version
    south, north = f"{run_name}-south", f"{run_name}-north"
    router_name, client_name = f"{run_name}-router", f"{run_name}-client"
    subnet = topology.cluster.node_subnet
    node_range = _covering([node.address for node in topology.nodes])
    gateway = max(
        host for host in subnet.hosts() if host not in node_range and host != topology.router.address
    )
    north_net = topology.router.north_address.network
    north_gateway = max(
        h
        for h in north_net.hosts()
        if h not in {topology.router.north_address.ip, topology.client.address.ip}
    )
    servers = [node for node in topology.nodes if node.role == "control-plane"]
    agents = [node for node in topology.nodes if node.role == "worker"]
    cluster = [
        "k3d", "cluster", "create", run_name,
        f"--image={k3s_image(topology.cluster.k3s_version)}",
        f"--servers={max(1, len(servers))}", f"--agents={len(agents)}",
        f"--network={south}", "--no-lb", "--wait",
        f"--volume={BPFFS_VOLUME}@all",
    ]  # fmt: skip
    cluster += [f"--k3s-arg={flag}@server:*" for flag in K3S_SERVER_FLAGS]
    # The topology's node names, so the steps find the nodes the walkthrough names (k3d's own would be
    # k3d-<run>-agent-0); the API on loopback only (k3d's default publishes it on every address).
    cluster += [f"--k3s-arg=--node-name={node.name}@server:{i}" for i, node in enumerate(servers)]
    cluster += [f"--k3s-arg=--node-name={node.name}@agent:{i}" for i, node in enumerate(agents)]
    cluster.append(f"--api-port=127.0.0.1:{K3D_API_PORT}")
    devices = ("/dev/net/tun", "/dev/kvm") if kvm else ("/dev/net/tun",)
    chr_spec = ContainerSpec(
        name=router_name,
        image=f"{chr_image}:{version}",
        networks={south: str(topology.router.address), north: str(topology.router.north_address.ip)},
        capabilities=("NET_ADMIN",),
        devices=devices,
        published={API_PORT: "127.0.0.1"},
        ready_when=f"a RouterOS API login on the published {API_PORT} (QEMU takes TCP before RouterOS is up)",
    )
    client_spec = ContainerSpec(
        name=client_name,
        image=client_image,
        networks={north: str(topology.client.address.ip)},
        capabilities=("NET_ADMIN",),
        command=("sleep", "infinity"),
        ready_when="running",
    )
    first_server = f"k3d-{run_name}-server-0"
    release = cilium_version if cilium_version is not None else str(topology.cluster.cilium_version)
    values = CiliumValues.for_topology(topology, installer, k8s_service_host=first_server, version=release)
    router_changes = [
        Change(
            "/ip/address",
            "add",
            {"address": f"{topology.router.address}/{subnet.prefixlen}", "interface": "ether1"},
        ),
        Change("/ip/address", "add", {"address": str(topology.router.north_address), "interface": "ether2"}),
        *plan_peers(
            topology_peers(topology),
            Dialect.of(version),
            router_id=str(topology.router.address),
            multipath=16 if topology.router.ecmp else None,
        ),
    ]
    create = ["docker", "network", "create"]
    networks = [
        [*create, f"--subnet={subnet}", f"--gateway={gateway}", f"--ip-range={node_range}", south],
        [*create, f"--subnet={north_net}", f"--gateway={north_gateway}", north],
    ]
    return K3dPlan(
        run_name=run_name,
        host=[
            ["mountpoint", "-q", "/sys/fs/bpf"],
            ["mount", "-t", "bpf", "bpffs", "/sys/fs/bpf"],
            ["mount", "--make-shared", "/sys/fs/bpf"],
        ],
        networks=networks,
        cluster=cluster,
        containers=[chr_spec, client_spec],
        client_setup=[
            [
                "docker",
                "exec",
                client_name,
                "ip",
                "route",
                "replace",
                "default",
                "via",
                str(topology.client.gateway),
            ],
        ],
        cilium=cilium_install_command(values, installer),
        router=router_changes,
        teardown=[
            ["k3d", "cluster", "delete", run_name],
            ["docker", "rm", "-f", router_name, client_name],
            ["docker", "network", "rm", south, north],
        ],
        notes=[
            f"node addresses come from Docker's range {node_range} in creation order; the target reads "
            "them back and stops with a message if they differ from the topology",
            "the client's only route to LB IPs is its default route via the router",
        ],
    )


def plan_from_options(topology: Topology, options: TargetOptions, run_name: str) -> K3dPlan:
    """The plan as the command line asks for it."""
    try:
        return k3d_plan(
            topology,
            run_name,
            routeros_version=options.routeros_version,
            chr_image=options.chr_image or DEFAULT_CHR_IMAGE,
            installer=options.installer,
            cilium_version=options.cilium_version,
        )
    except HarnessError as exc:
        raise ConfigError(f"--routeros-version: {exc}") from None
