"""kubectl against a running server: the walkthrough's commands, printed the walkthrough's way."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bgpconform.lab.apiserver.exec_registry import ExecResult
from bgpconform.lab.apiserver.server import ApiServer
from tests.apiserver.conftest import FIXTURES, Kubectl, kubectl_runner


def _columns(output: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()]


# kubectl before 1.30 execs over SPDY; the gcloud dispatcher installs versioned binaries side by side.
SPDY_KUBECTLS = tuple(f"/usr/lib/google-cloud-sdk/bin/kubectl.1.{minor}" for minor in (27, 28, 29))


@pytest.fixture
def walkthrough(kubectl: Kubectl) -> Kubectl:
    """Nodes registered and the Cilium CRDs installed, as after the walkthrough's operator restart."""
    kubectl("apply", "-f", str(FIXTURES / "nodes.yaml"))
    kubectl(
        "apply",
        "-f",
        str(FIXTURES / "ciliumloadbalancerippools.yaml"),
        "-f",
        str(FIXTURES / "ciliumbgppeeringpolicies.yaml"),
    )
    return kubectl


def test_get_nodes_and_label(walkthrough: Kubectl) -> None:
    rows = _columns(walkthrough("get", "nodes").stdout)
    assert rows[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["k3s-control-plane-01"][1:3] == ["NotReady", "control-plane,master"]
    assert by_name["k3s-worker-node-01"][1:3] == ["NotReady", "<none>"]
    assert by_name["k3s-worker-node-01"][4] == "v1.27.3+k3s1"
    for worker in ("k3s-worker-node-01", "k3s-worker-node-02", "k3s-worker-node-03"):
        assert (
            walkthrough("label", "nodes", worker, "bgp-policy=a").stdout.strip() == f"node/{worker} labeled"
        )
    selected = _columns(walkthrough("get", "nodes", "-l", "bgp-policy=a").stdout)
    assert sorted(row[0] for row in selected[1:]) == [
        "k3s-worker-node-01",
        "k3s-worker-node-02",
        "k3s-worker-node-03",
    ]


def test_api_resources_lists_cilium_crds(walkthrough: Kubectl) -> None:
    rows = {row[0]: row for row in _columns(walkthrough("api-resources").stdout)}
    assert rows["NAME"] == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    assert rows["ciliumloadbalancerippools"] == [
        "ciliumloadbalancerippools",
        "ippools,ippool,lbippool,lbippools",
        "cilium.io/v2alpha1",
        "false",
        "CiliumLoadBalancerIPPool",
    ]
    assert rows["ciliumbgppeeringpolicies"] == [
        "ciliumbgppeeringpolicies",
        "bgpp",
        "cilium.io/v2alpha1",
        "false",
        "CiliumBGPPeeringPolicy",
    ]
    assert rows["pods"][1:] == ["po", "v1", "true", "Pod"]


def test_missing_crd_reads_as_in_the_walkthrough(kubectl: Kubectl) -> None:
    result = kubectl("get", "--raw", "/apis/cilium.io/v2alpha1/ciliumbgppeeringpolicies", check=False)
    assert result.returncode == 1
    assert "the server could not find the requested resource" in result.stderr


def test_apply_walkthrough_manifests(walkthrough: Kubectl) -> None:
    applied = walkthrough("apply", "-f", str(FIXTURES / "cilium-bgp-policy.yaml")).stdout
    assert applied.strip() == "ciliumbgppeeringpolicy.cilium.io/01-bgp-peering-policy created"
    created = walkthrough("create", "-f", str(FIXTURES / "cilium-ippool.yaml")).stdout
    assert created.strip() == "ciliumloadbalancerippool.cilium.io/lb-pool created"
    cidr = walkthrough(
        "get", "CiliumLoadBalancerIPPool", "lb-pool", "-o", "jsonpath={.spec.cidrs[0].cidr}"
    ).stdout
    assert cidr == "172.198.1.0/24"
    pools = _columns(walkthrough("get", "ciliumloadbalancerippools").stdout)
    assert pools[0] == ["NAME", "DISABLED", "CONFLICTING", "IPS AVAILABLE", "AGE"]
    assert pools[1][:2] == ["lb-pool", "false"]
    assert walkthrough("apply", "-f", str(FIXTURES / "pod.yaml")).stdout.strip() == "pod/simple-pod created"
    assert (
        walkthrough("apply", "-f", str(FIXTURES / "service.yaml")).stdout.strip()
        == "service/my-service created"
    )
    again = walkthrough("apply", "-f", str(FIXTURES / "service.yaml")).stdout.strip()
    assert again == "service/my-service unchanged"
    table = walkthrough("get", "pod,svc").stdout
    assert re.search(r"pod/simple-pod\s+0/1\s+Pending\s+0\s+\d+s", table)
    assert re.search(
        r"service/my-service\s+LoadBalancer\s+10\.43\.\d+\.\d+\s+<pending>\s+8080:3\d{4}/TCP", table
    )
    assert re.search(r"service/kubernetes\s+ClusterIP\s+10\.43\.0\.1\s+<none>\s+443/TCP", table)


def test_apply_rejects_unknown_fields_server_side(walkthrough: Kubectl) -> None:
    manifest = (FIXTURES / "cilium-ippool.yaml").read_text().replace("  cidrs:", "  bogus: 1\n  cidrs:")
    result = walkthrough("apply", "-f", "-", stdin=manifest, check=False)
    assert result.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in result.stderr


def test_get_pods_all_namespaces_and_delete(walkthrough: Kubectl) -> None:
    walkthrough("apply", "-f", str(FIXTURES / "pod.yaml"))
    walkthrough("run", "coredns-5d78c9869d-p5svm", "-n", "kube-system", "--image=coredns")
    rows = _columns(walkthrough("get", "pods", "-A").stdout)
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("default", "simple-pod"),
        ("kube-system", "coredns-5d78c9869d-p5svm"),
    ]
    deleted = walkthrough("delete", "pod", "-n", "kube-system", "coredns-5d78c9869d-p5svm", "--timeout=20s")
    assert deleted.stdout.strip() == 'pod "coredns-5d78c9869d-p5svm" deleted'
    assert "coredns" not in walkthrough("get", "pods", "-A").stdout


def _exec_checks(server: ApiServer, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", str(FIXTURES / "pod.yaml"))
    kubectl(
        "patch",
        "pod",
        "simple-pod",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"Running"}}',
    )

    def handler(argv: list[str], stdin: bytes | None) -> ExecResult:
        if argv == ["false"]:
            return ExecResult(exit_code=3, stderr=b"failed\n")
        return ExecResult(stdout=" ".join(argv).encode() + b"\n" + (stdin or b""), stderr=b"note\n")

    server.exec_handlers.register("default", "simple-pod", "my-app-container", handler)
    plain = kubectl("exec", "simple-pod", "--", "cilium", "bgp", "peers")
    assert (plain.stdout, plain.stderr) == ("cilium bgp peers\n", "note\n")
    assert kubectl("exec", "-i", "simple-pod", "--", "cat", stdin="piped\n").stdout == "cat\npiped\n"
    failed = kubectl("exec", "simple-pod", "--", "false", check=False)
    assert failed.returncode == 3
    assert "failed" in failed.stderr
    assert "command terminated with exit code 3" in failed.stderr


def test_logs(server: ApiServer, walkthrough: Kubectl) -> None:
    walkthrough("apply", "-f", "-", stdin=(FIXTURES / "pod.yaml").read_text())
    server.logs.append("default", "simple-pod", "my-app-container", "level=info msg=ready subsys=daemon")
    assert walkthrough("logs", "simple-pod").stdout == "level=info msg=ready subsys=daemon\n"
    assert walkthrough("logs", "simple-pod", "--tail=1", "--timestamps").stdout.endswith(
        "Z level=info msg=ready subsys=daemon\n"
    )


def test_exec(server: ApiServer, kubectl: Kubectl) -> None:
    _exec_checks(server, kubectl)


def test_exec_over_spdy(server: ApiServer, tmp_path: Path) -> None:
    binary = next((path for path in SPDY_KUBECTLS if shutil.which(path)), None)
    if binary is None:
        pytest.skip("no kubectl older than 1.30 installed (looked for: " + ", ".join(SPDY_KUBECTLS) + ")")
    _exec_checks(server, kubectl_runner(binary, server, tmp_path))
