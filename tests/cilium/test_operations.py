"""cilium-cli's operations over a real API server: `config set` restarts only the agents (FACTS.md,
"CRD registration, config, logs"), the operator is restarted by hand, and `bgp peers` execs in each
agent pod (FACTS.md, "`cilium bgp peers`")."""

from __future__ import annotations

from typing import Any

import pytest

from bgpconform.bgp_states import SessionState
from bgpconform.cilium.bgp_peers import BgpPeer, PeerFamily
from bgpconform.cilium.operations import CiliumOperationError, CiliumOperations
from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.lab.apiserver.exec_registry import ExecResult
from bgpconform.lab.apiserver.server import ApiServer

NS = "kube-system"
# An established 1.13 agent's `cilium bgp peers -o json` (the fields of the 1.13 backport).
AGENT_JSON = """[
  {
    "families": [
      {
        "advertised": 2,
        "afi": "ipv4",
        "received": 1,
        "safi": "unicast"
      },
      {
        "afi": "ipv6",
        "safi": "unicast"
      }
    ],
    "local-asn": 64512,
    "peer-address": "192.168.1.1",
    "peer-asn": 64512,
    "session-state": "established",
    "uptime-nanoseconds": 5622000000000
  }
]
"""


def make_pod(kube: Kube, name: str, labels: dict[str, str], node: str | None = None) -> None:
    spec: dict[str, Any] = {
        "containers": [{"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.13.4"}]
    }
    if node:
        spec["nodeName"] = node
    kube.create(Resources.PODS, {"metadata": {"name": name, "labels": labels}, "spec": spec}, NS)


def pod_names(kube: Kube) -> list[str]:
    return sorted(p["metadata"]["name"] for p in kube.items(Resources.PODS, NS))


@pytest.fixture
def cluster(kube: Kube) -> Kube:
    """The walkthrough's kube-system after install: four agents, one operator, CoreDNS."""
    kube.create(
        Resources.CONFIGMAPS,
        {"metadata": {"name": "cilium-config"}, "data": {"enable-bgp-control-plane": "false"}},
        NS,
    )
    for name in ("cilium-6fnjv", "cilium-g2s9w"):
        make_pod(kube, name, {"k8s-app": "cilium", "app.kubernetes.io/name": "cilium-agent"})
    make_pod(
        kube, "cilium-operator-768959858c-zjjnc", {"io.cilium/app": "operator", "name": "cilium-operator"}
    )
    make_pod(kube, "coredns-5d78c9869d-p5svm", {"k8s-app": "kube-dns"})
    return kube


def test_config_set_patches_the_config_and_restarts_only_the_agents(cluster: Kube) -> None:
    ops = CiliumOperations(cluster)
    deleted = ops.config_set("enable-bgp-control-plane", "true")
    assert sorted(deleted) == ["cilium-6fnjv", "cilium-g2s9w"]
    assert pod_names(cluster) == ["cilium-operator-768959858c-zjjnc", "coredns-5d78c9869d-p5svm"]
    assert ops.config_get() == {"enable-bgp-control-plane": "true"}
    assert [p["metadata"]["name"] for p in ops.operator_pods()] == ["cilium-operator-768959858c-zjjnc"]


def test_config_set_without_restart_deletes_nothing(cluster: Kube) -> None:
    ops = CiliumOperations(cluster)
    assert ops.config_set("debug", "true", restart=False) == []
    assert len(ops.agent_pods()) == 2
    assert ops.config_get()["debug"] == "true"


def test_restart_operator_deletes_only_the_operator(cluster: Kube) -> None:
    ops = CiliumOperations(cluster)
    assert ops.restart_operator() == ["cilium-operator-768959858c-zjjnc"]
    assert pod_names(cluster) == ["cilium-6fnjv", "cilium-g2s9w", "coredns-5d78c9869d-p5svm"]
    assert ops.restart_operator() == []


def test_bgp_peers_execs_in_each_agent_and_keys_by_node(server: ApiServer, kube: Kube) -> None:
    calls: list[tuple[str, list[str]]] = []
    for name, node in (("cilium-5mczq", "k3s-worker-node-01"), ("cilium-k9p6z", "k3s-worker-node-02")):
        make_pod(kube, name, {"k8s-app": "cilium"}, node=node)

        def handler(argv: list[str], stdin: bytes | None, pod: str = name) -> ExecResult:
            calls.append((pod, argv))
            return ExecResult(stdout=(AGENT_JSON if pod == "cilium-5mczq" else "null\n").encode())

        server.exec_handlers.register(NS, name, "cilium-agent", handler)
    make_pod(kube, "cilium-pending", {"k8s-app": "cilium"})  # not scheduled yet: skipped, as no node

    peers = CiliumOperations(kube).bgp_peers()
    assert peers == {
        "k3s-worker-node-01": [
            BgpPeer(
                local_asn=64512,
                peer_asn=64512,
                peer_address="192.168.1.1",
                session_state=SessionState.ESTABLISHED,
                peer_port=None,
                uptime_ns=5622000000000,
                families=(
                    PeerFamily("ipv4", "unicast", received=1, advertised=2),
                    PeerFamily("ipv6", "unicast"),
                ),
            )
        ],
        "k3s-worker-node-02": [],
    }
    assert sorted(calls) == [
        ("cilium-5mczq", ["cilium", "bgp", "peers", "-o", "json"]),
        ("cilium-k9p6z", ["cilium", "bgp", "peers", "-o", "json"]),
    ]


def test_bgp_peers_names_the_pods_that_failed(server: ApiServer, kube: Kube) -> None:
    make_pod(kube, "cilium-ok", {"k8s-app": "cilium"}, node="k3s-worker-node-01")
    make_pod(kube, "cilium-broken", {"k8s-app": "cilium"}, node="k3s-worker-node-02")
    make_pod(kube, "cilium-silent", {"k8s-app": "cilium"}, node="k3s-worker-node-03")
    server.exec_handlers.register(NS, "cilium-ok", "cilium-agent", lambda argv, stdin: ExecResult(b"[]\n"))
    server.exec_handlers.register(
        NS,
        "cilium-broken",
        "cilium-agent",
        lambda argv, stdin: ExecResult(b"", b"Error: connection refused\n", 1),
    )
    with pytest.raises(CiliumOperationError) as raised:
        CiliumOperations(kube).bgp_peers()
    message = str(raised.value)
    assert "cilium-broken on k3s-worker-node-02" in message
    assert "exited 1: Error: connection refused" in message
    assert "cilium-silent on k3s-worker-node-03" in message
    assert "no exec handler" in message
    assert "cilium-ok" not in message


def test_config_set_of_cilium_cli_0_18_7_restarts_the_operator_too(cluster: Kube) -> None:
    """FACTS.md: from cilium-cli v0.18.7 `config set` deletes the operator pods (`io.cilium/app=operator`)."""
    ops = CiliumOperations(cluster, cli_version="0.18.7")
    deleted = ops.config_set("enable-bgp-control-plane", "true")
    assert sorted(deleted) == ["cilium-6fnjv", "cilium-g2s9w", "cilium-operator-768959858c-zjjnc"]
    assert pod_names(cluster) == ["coredns-5d78c9869d-p5svm"]


def test_config_set_of_cilium_cli_0_18_6_still_leaves_the_operator(cluster: Kube) -> None:
    ops = CiliumOperations(cluster, cli_version="0.18.6")
    assert sorted(ops.config_set("enable-bgp-control-plane", "true")) == ["cilium-6fnjv", "cilium-g2s9w"]
