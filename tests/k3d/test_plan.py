"""The k3d plan for the walkthrough topology: what nightly CI will create, checked before it exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bgpconform.targets.k3d.plan import K3dPlan, k3d_plan
from bgpconform.topology import Topology, load_topology

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(REPO / "topologies" / "lab-routeros.yaml")


@pytest.fixture(scope="module")
def plan(topology: Topology) -> K3dPlan:
    return k3d_plan(topology, "bgpc-test")


def _flag(argv: list[str], name: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"{name}=")]


def test_the_cluster_has_the_topologys_nodes_and_k3s_version(plan: K3dPlan) -> None:
    assert plan.cluster[:4] == ["k3d", "cluster", "create", "bgpc-test"]
    assert _flag(plan.cluster, "--image") == ["rancher/k3s:v1.27.3-k3s1"]
    assert (_flag(plan.cluster, "--servers"), _flag(plan.cluster, "--agents")) == (["1"], ["3"])
    assert _flag(plan.cluster, "--network") == ["bgpc-test-south"]


def test_k3s_gets_the_flags_cilium_needs_on_every_server(plan: K3dPlan) -> None:
    """FACTS.md: no flannel, no network policy, no kube-proxy, no traefik/servicelb/metrics-server."""
    assert sorted(_flag(plan.cluster, "--k3s-arg")) == sorted(
        [
            "--flannel-backend=none@server:*",
            "--disable-network-policy@server:*",
            "--disable=traefik,servicelb,metrics-server@server:*",
            "--disable-kube-proxy@server:*",
            "--node-name=k3s-control-plane-01@server:0",
            "--node-name=k3s-worker-node-01@agent:0",
            "--node-name=k3s-worker-node-02@agent:1",
            "--node-name=k3s-worker-node-03@agent:2",
        ]
    )


def test_the_kubernetes_api_is_published_on_loopback_only(plan: K3dPlan) -> None:
    assert _flag(plan.cluster, "--api-port") == ["127.0.0.1:6550"]


def test_bpffs_is_shared_with_every_node_container(plan: K3dPlan) -> None:
    assert _flag(plan.cluster, "--volume") == ["/sys/fs/bpf:/sys/fs/bpf:shared@all"]
    assert ["mount", "--make-shared", "/sys/fs/bpf"] in plan.host


def test_the_node_network_keeps_the_router_address_out_of_dockers_range(
    plan: K3dPlan, topology: Topology
) -> None:
    south = plan.networks[0]
    assert _flag(south, "--subnet") == ["192.168.1.0/24"]
    assert _flag(south, "--ip-range") == ["192.168.1.200/30"]  # .200-.203: the topology's nodes
    gateway = _flag(south, "--gateway")[0]
    assert gateway not in {str(topology.router.address), *(str(n.address) for n in topology.nodes)}


def test_the_chr_container_is_routeros_at_the_router_addresses(plan: K3dPlan) -> None:
    chr_spec = plan.containers[0]
    assert chr_spec.image == "evilfreelancer/docker-routeros:7.8"
    assert chr_spec.networks == {"bgpc-test-south": "192.168.1.1", "bgpc-test-north": "198.51.100.1"}
    assert "NET_ADMIN" in chr_spec.capabilities
    assert set(chr_spec.devices) == {"/dev/net/tun", "/dev/kvm"}
    assert chr_spec.published == {8728: "127.0.0.1"}  # reached only on loopback
    assert "login" in chr_spec.ready_when  # not an open port: QEMU accepts TCP before RouterOS is up
    run = chr_spec.docker_run()
    assert run[-1] == "evilfreelancer/docker-routeros:7.8"
    assert "--publish=127.0.0.1::8728" in run


def test_the_outside_client_reaches_lb_ips_only_through_the_router(plan: K3dPlan) -> None:
    client = plan.containers[1]
    assert client.networks == {"bgpc-test-north": "198.51.100.10"}  # not on the nodes' network
    assert plan.client_setup == [
        ["docker", "exec", "bgpc-test-client", "ip", "route", "replace", "default", "via", "198.51.100.1"]
    ]


def test_cilium_is_installed_with_the_k3s_settings(plan: K3dPlan, topology: Topology) -> None:
    assert plan.cilium[:3] == ["cilium", "install", "--version=1.13.4"]
    settings = dict(value.split("=", 1) for value in _flag(plan.cilium, "--set"))
    assert settings["kubeProxyReplacement"] == "strict"  # 1.13 (FACTS.md: `true` from 1.14)
    assert settings["k8sServiceHost"] == "k3d-bgpc-test-server-0"
    assert settings["k8sServicePort"] == "6443"
    assert settings["bgpControlPlane.enabled"] == "false"  # the walkthrough enables it later
    # cilium-cli leaves one operator (the walkthrough's rack runs one), the chart two (FACTS.md).
    assert settings["operator.replicas"] == "1"
    helm = k3d_plan(topology, "bgpc-test", installer="helm").cilium
    assert helm[:6] == ["helm", "upgrade", "--install", "cilium", "cilium", "--repo=https://helm.cilium.io/"]
    assert "--version=1.13.4" in helm
    assert dict(value.split("=", 1) for value in _flag(helm, "--set"))["operator.replicas"] == "2"


def test_the_install_command_follows_the_cilium_version(topology: Topology) -> None:
    """`strict` was 1.13's word for a full kube-proxy replacement; 1.14 replaced it with `true` (FACTS.md,
    "Cilium 1.13 to 1.20")."""
    for version, expected in (("1.13.4", "strict"), ("1.14.3", "true"), ("1.19.1", "true")):
        command = k3d_plan(topology, "v", cilium_version=version).cilium
        assert f"--version={version}" in command
        settings = dict(value.split("=", 1) for value in _flag(command, "--set"))
        assert settings["kubeProxyReplacement"] == expected


def test_router_commands_follow_the_routeros_version(topology: Topology) -> None:
    old = [c.cli() for c in k3d_plan(topology, "r", routeros_version="7.8").router]
    new = [c.cli() for c in k3d_plan(topology, "r", routeros_version="7.20").router]
    assert (
        old[:2]
        == new[:2]
        == [
            "/ip/address/add address=192.168.1.1/24 interface=ether1",
            "/ip/address/add address=198.51.100.1/24 interface=ether2",
        ]
    )
    assert [line.split()[0] for line in old[2:]] == ["/routing/bgp/connection/add"] * 3
    assert all("address-families=ip" in line and "routing-table=main" in line for line in old[2:])
    assert new[2].startswith("/routing/bgp/instance/add as=64512 comment=bgpconform name=bgpconform")
    assert all("afi=ip" in line and "instance=bgpconform" in line for line in new[3:])
    assert k3d_plan(topology, "r", routeros_version="7.20").containers[0].image.endswith(":7.20")


def test_teardown_removes_everything_the_plan_creates(plan: K3dPlan) -> None:
    created_networks = {argv[-1] for argv in plan.networks}
    created_containers = {spec.name for spec in plan.containers}
    removed = [word for argv in plan.teardown for word in argv]
    assert created_networks <= set(removed)
    assert created_containers <= set(removed)
    assert ["k3d", "cluster", "delete", "bgpc-test"] in plan.teardown


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dry_run_prints_the_plan_and_creates_nothing() -> None:
    done = _pytest(
        "--target=k3d", "--dry-run", "--topology=topologies/lab-routeros.yaml", "--routeros-version=7.20"
    )
    assert done.returncode == 0, done.stderr
    for heading in ("## networks", "## cluster", "## containers", "## Cilium", "## router", "## teardown"):
        assert heading in done.stdout
    assert "evilfreelancer/docker-routeros:7.20" in done.stdout
    assert "/routing/bgp/instance/add" in done.stdout
    assert "passed" not in done.stdout  # no test ran


def test_dry_run_refuses_other_targets_and_bad_versions() -> None:
    other = _pytest("--target=lab", "--dry-run")
    assert other.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--dry-run plans a k3d run" in other.stderr
    bad = _pytest("--target=k3d", "--dry-run", "--routeros-version=latest")
    assert bad.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--routeros-version: cannot read a RouterOS version from 'latest'" in bad.stderr
