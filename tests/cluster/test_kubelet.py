"""The emulated kubelet on the real lab: nodes, CNI readiness, pods in namespaces, restarts, image errors.

Everything is read back through the official client (and the server-side table kubectl prints), as a
person would see the walkthrough's cluster. No scheduler runs here: pods are bound with `spec.nodeName`.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from bgpconform.errors import CommandError
from bgpconform.kubeapi.client import Kube, new_api_client
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.cluster.images import builtin_images
from bgpconform.lab.cluster.kubelet import CNI_NOT_INITIALIZED, NETWORK_NOT_READY_EVENT, Kubelet
from bgpconform.lab.cluster.runtime import ContainerContext
from bgpconform.lab.lab import Lab
from bgpconform.lab.runs import list_namespaces
from bgpconform.lab.workloads import PROBE_USER_AGENT, STOCK_INDEX_HTML
from bgpconform.topology import Topology, load_topology
from bgpconform.waiting import wait_for

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
EXITING_IMAGE = "registry.bgpconform.test/exits:1.0"
CONFLIST = {
    "cniVersion": "0.3.1",
    "name": "cilium",
    "plugins": [{"type": "cilium-cni", "enable-debug": False}],
}
# The client's generated models are untyped; the tests hold them as Any.
CoreApi = Any
new_client_from_config: Any = config.new_client_from_config


class ExitingProgram:
    """A container whose process ends with code 3 as soon as it started, like a crashing binary."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self.started = False

    def start(self) -> None:
        self.started = True
        self.ctx.log("fatal: giving up")

    def ready(self) -> bool:
        return False

    def exit_code(self) -> int | None:
        return 3 if self.started else None

    def stop(self) -> None:
        self.started = False


@dataclass
class KubeletLab:
    lab: Lab
    server: ApiServer
    kubelets: dict[str, Kubelet]
    core: CoreApi

    @property
    def topology(self) -> Topology:
        return self.lab.topology

    def cni_ready(self, node: str) -> IPv4Network:
        """What the Cilium agent leaves behind once it runs: its node's pod network (the CIDR IPAM gave
        it; here the node's index in the walkthrough's pool) and a conflist in the node's CNI dir."""
        index = [n.name for n in self.topology.nodes].index(node)
        cidr = IPv4Network(f"10.136.{index}.0/24")
        network = self.lab.network
        network.assign_pod_cidr(node, cidr)
        here = self.topology.node(node)
        for other in self.topology.nodes:  # every agent's node routes, both ways
            if other.name == node:
                continue
            network.route_pod_cidr(other.name, cidr, here.address)
            other_cidr = network.pod_cidr(other.name)
            if other_cidr is not None:
                network.route_pod_cidr(node, other_cidr, other.address)
        (self.kubelets[node].cni_config_dir / "05-cilium.conflist").write_text(json.dumps(CONFLIST))
        return cidr

    def node_ready(self, name: str) -> Any:
        return next(c for c in self.core.read_node(name).status.conditions if c.type == "Ready")

    def pod(self, name: str) -> Any:
        return self.core.read_namespaced_pod(name, "default")

    def container(self, name: str) -> Any:
        """The pod's first container status, or None before the kubelet wrote one."""
        statuses = self.pod(name).status.container_statuses
        return statuses[0] if statuses else None

    def status_column(self, name: str) -> str:
        """The STATUS cell of `kubectl get pod <name>`, from the server-side table."""
        request = urllib.request.Request(
            f"{self.server.url}/api/v1/namespaces/default/pods/{name}", headers={"Accept": TABLE}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            table = json.load(response)
        return str(table["rows"][0]["cells"][2])

    def events(self, name: str) -> list[Any]:
        selector = f"involvedObject.name={name}"
        return list(self.core.list_namespaced_event("default", field_selector=selector).items)

    def wait_phase(self, name: str, phase: str, timeout: float = 15) -> Any:
        return wait_for(
            lambda: self.pod(name),
            lambda pod: (
                pod.status.phase == phase
                and (phase != "Running" or all(c.ready for c in pod.status.container_statuses or []))
            ),
            expected=f"pod {name} {phase}" + (" with every container ready" if phase == "Running" else ""),
            describe=lambda pod: (pod.status.phase, pod.status.container_statuses),
            timeout=timeout,
        ).value


def pod_body(name: str, node: str, image: str = "nginx:latest", **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if image.startswith("nginx"):
        container["ports"] = [{"containerPort": 80}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [container], **spec},
    }


def pod_processes(directory: Path) -> list[int]:
    """Processes whose command line names a path under `directory` (nginx runs with `-p <dir>`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def cluster() -> Iterator[KubeletLab]:
    topology = load_topology(REPO / "topologies" / "lab.yaml")
    with Lab(topology, purpose="tests") as lab:
        server = ApiServer(lab.run.directory / "api", bookmark_interval=0.2)
        server.start()
        images = builtin_images()
        images.register("registry.bgpconform.test/exits:*", ExitingProgram)
        kubelets: dict[str, Kubelet] = {}
        api = new_client_from_config(config_file=str(server.kubeconfig_path))
        try:
            for node in topology.nodes:
                kubelets[node.name] = Kubelet(
                    Kube(new_api_client(str(server.kubeconfig_path))),
                    node=node,
                    topology=topology,
                    network=lab.network,
                    images=images,
                    logs=server.logs,
                    exec_handlers=server.exec_handlers,
                    kubeconfig=str(server.kubeconfig_path),
                    directory=lab.run.directory / "nodes" / node.name,
                    k3s_version=topology.cluster.k3s_version,
                    init_step=0.3,
                    backoff_base=0.4,
                    tick=0.05,
                ).start()
            yield KubeletLab(lab, server, kubelets, client.CoreV1Api(api))
        finally:
            for kubelet in kubelets.values():
                kubelet.stop()
            api.close()
            server.stop()
        run_id = lab.run.run_id
        run_directory = lab.run.directory
    assert not [ns for ns in list_namespaces() if run_id in ns]
    assert not pod_processes(run_directory)


def test_nodes_register_not_ready_for_want_of_a_cni(cluster: KubeletLab) -> None:
    """Walkthrough, first `kubectl get nodes`: every node NotReady, VERSION v1.27.3+k3s1."""
    names = [node.name for node in cluster.topology.nodes]
    nodes = wait_for(
        lambda: {node.metadata.name: node for node in cluster.core.list_node().items},
        lambda found: sorted(found) == sorted(names),
        expected=f"nodes {names} registered",
        timeout=10,
    ).value
    for spec in cluster.topology.nodes:
        node = nodes[spec.name]
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert (ready.status, ready.reason, ready.message) == (
            "False",
            "KubeletNotReady",
            CNI_NOT_INITIALIZED,
        )
        assert {c.type: c.status for c in node.status.conditions} == {
            "MemoryPressure": "False",
            "DiskPressure": "False",
            "PIDPressure": "False",
            "Ready": "False",
        }
        assert [(t.key, t.effect) for t in node.spec.taints] == [
            ("node.kubernetes.io/not-ready", "NoSchedule")
        ]
        assert node.spec.pod_cidr is None  # the node IPAM controller's to set, not the kubelet's
        assert node.status.node_info.kubelet_version == "v1.27.3+k3s1"
        assert node.status.node_info.container_runtime_version == "containerd://1.7.1-k3s1"
        assert node.status.node_info.architecture == "arm64"
        assert {(a.type, a.address) for a in node.status.addresses} == {
            ("InternalIP", str(spec.address)),
            ("Hostname", spec.name),
        }
        assert node.status.capacity["pods"] == "110"
        labels = node.metadata.labels
        assert labels["kubernetes.io/hostname"] == spec.name
        assert labels["node.kubernetes.io/instance-type"] == "k3s"
        roles = {k for k in labels if k.startswith("node-role.kubernetes.io/")}
        if spec.role == "control-plane":
            assert roles == {"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}
        else:
            assert roles == set()
        assert node.metadata.annotations["k3s.io/internal-ip"] == str(spec.address)


def test_a_cni_config_makes_its_node_ready_and_removing_it_reverts(cluster: KubeletLab) -> None:
    name = cluster.topology.workers[2].name
    cluster.cni_ready(name)
    ready = wait_for(
        lambda: cluster.node_ready(name),
        lambda c: c.status == "True",
        expected=f"{name} Ready once its CNI config exists",
        describe=lambda c: (c.status, c.reason, c.message),
        timeout=10,
    ).value
    assert (ready.reason, ready.message) == ("KubeletReady", "kubelet is posting ready status")
    others = [n.name for n in cluster.topology.nodes if n.name != name]
    assert all(cluster.node_ready(other).status == "False" for other in others)
    (cluster.kubelets[name].cni_config_dir / "05-cilium.conflist").unlink()
    again = wait_for(
        lambda: cluster.node_ready(name),
        lambda c: c.status == "False",
        expected=f"{name} NotReady again once its CNI config is gone",
        timeout=10,
    ).value
    assert again.message == CNI_NOT_INITIALIZED


def test_host_network_pods_run_on_a_not_ready_node(cluster: KubeletLab) -> None:
    """Cilium's agent pods are hostNetwork: they must start before any CNI exists."""
    node = cluster.topology.control_planes[0]
    body = pod_body("hostnet", node.name, "busybox:1.36", hostNetwork=True)
    cluster.core.create_namespaced_pod("default", body)
    pod = cluster.wait_phase("hostnet", "Running")
    assert pod.status.pod_ip == pod.status.host_ip == str(node.address)
    assert cluster.node_ready(node.name).status == "False"
    cluster.core.delete_namespaced_pod("hostnet", "default")


def test_pods_wait_for_the_network_then_nginx_serves_from_the_nodes_pod_cidr(cluster: KubeletLab) -> None:
    node, other = cluster.topology.workers[1], cluster.topology.workers[0]
    cluster.core.create_namespaced_pod("default", pod_body("simple-pod", node.name))
    wait_for(
        lambda: [e.reason for e in cluster.events("simple-pod")],
        lambda reasons: "NetworkNotReady" in reasons,
        expected="a NetworkNotReady event for simple-pod",
        timeout=10,
    )
    # The event and the status update are separate writes, as with a real kubelet: wait for both.
    pod = wait_for(
        lambda: cluster.pod("simple-pod"),
        lambda found: bool(found.status.container_statuses),
        expected="simple-pod's container status written",
        timeout=10,
    ).value
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    assert pod.status.pod_ip is None
    assert cluster.status_column("simple-pod") == "ContainerCreating"
    event = next(e for e in cluster.events("simple-pod") if e.reason == "NetworkNotReady")
    assert (event.type, event.message, event.source.component) == (
        "Warning",
        NETWORK_NOT_READY_EVENT,
        "kubelet",
    )

    cidr = cluster.cni_ready(node.name)
    pod = cluster.wait_phase("simple-pod", "Running")
    assert IPv4Address(pod.status.pod_ip) in cidr
    assert pod.status.host_ip == str(node.address)
    assert {c.type: c.status for c in pod.status.conditions} == {
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    status = pod.status.container_statuses[0]
    assert status.image == "docker.io/library/nginx:latest"
    assert status.container_id.startswith("containerd://")
    assert len(status.container_id) == len("containerd://") + 64
    assert (status.started, status.restart_count) == (True, 0)
    assert status.state.running.started_at
    assert cluster.status_column("simple-pod") == "Running"

    # From another node's namespace, over the lab's wire: the walkthrough's page.
    page = wait_for(
        lambda: cluster.lab.node_exec(
            other.name, ["curl", "-sS", "--max-time", "2", f"http://{pod.status.pod_ip}/"]
        ),
        lambda text: "Welcome to nginx!" in text,
        expected="the nginx page from another node",
        timeout=10,
        tolerate=(CommandError,),
    ).value
    assert "<title>Welcome to nginx!</title>" in page
    logs = cluster.core.read_namespaced_pod_log("simple-pod", "default")
    assert "Configuration complete; ready for start up" in logs

    pods_before = set(cluster.lab.network.pods)
    assert len(pods_before) == 1
    namespace = cluster.lab.network.pods[next(iter(pods_before))].namespace
    directory = cluster.kubelets[node.name].pods_dir / pod.metadata.uid
    assert pod_processes(directory)
    cluster.core.delete_namespaced_pod("simple-pod", "default")
    wait_for(
        lambda: (namespace in list_namespaces(), pod_processes(directory), directory.exists()),
        lambda seen: seen == (False, [], False),
        expected="the pod's namespace, nginx processes and directory gone after deletion",
        timeout=15,
    )


def test_nginx_logs_each_request_in_combined_format(cluster: KubeletLab) -> None:
    """As the official image's access log on stdout: one `combined` line per request, probes left out."""
    node, other = cluster.topology.workers[1], cluster.topology.workers[0]
    cluster.cni_ready(node.name)
    cluster.core.create_namespaced_pod("default", pod_body("logged-pod", node.name))
    pod = cluster.wait_phase("logged-pod", "Running")
    paths = ["/?request=1", "/?request=2"]

    def fetch(path: str) -> str:
        url = f"http://{pod.status.pod_ip}{path}"
        return cluster.lab.node_exec(other.name, ["curl", "-sS", "--fail", "--max-time", "2", url])

    for path in paths:
        wait_for(
            partial(fetch, path),
            lambda page: page == STOCK_INDEX_HTML,
            expected=f"the nginx page for {path} from {other.name}",
            timeout=10,
            tolerate=(CommandError,),
        )
    stamp = r"\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\]"
    patterns = [
        re.compile(
            rf'^{re.escape(str(other.address))} - - {stamp} "GET {re.escape(path)} HTTP/1\.1" 200 '
            rf'{len(STOCK_INDEX_HTML.encode())} "-" "curl/[^"]+"$'
        )
        for path in paths
    ]

    def request_lines() -> list[str]:
        text = cluster.core.read_namespaced_pod_log("logged-pod", "default")
        return [line for line in text.splitlines() if '"GET ' in line]

    lines = wait_for(
        request_lines,
        lambda found: len(found) >= len(paths),
        expected=f"{len(paths)} request lines in kubectl logs logged-pod",
        timeout=10,
    ).value
    assert len(lines) == len(paths), lines  # once each, and not the readiness probe's GETs
    for pattern, line in zip(patterns, lines, strict=True):
        assert pattern.match(line), line
    assert PROBE_USER_AGENT not in cluster.core.read_namespaced_pod_log("logged-pod", "default")
    cluster.core.delete_namespaced_pod("logged-pod", "default")
    wait_for(
        lambda: [a.namespace for a in cluster.lab.network.pods.values()],
        lambda namespaces: namespaces == [],
        expected="logged-pod's namespace released after deletion",
        timeout=15,
    )


def test_init_containers_run_in_order_and_show_in_the_status_column(cluster: KubeletLab) -> None:
    node = cluster.topology.workers[0]
    cluster.cni_ready(node.name)
    body = pod_body("with-init", node.name, "rancher/mirrored-pause:3.6")
    body["spec"]["initContainers"] = [
        {"name": name, "image": "busybox:1.36"} for name in ("config", "mount-cgroup", "mount-bpf-fs")
    ]
    cluster.core.create_namespaced_pod("default", body)
    seen: list[str] = []

    def column() -> str:
        text = cluster.status_column("with-init")
        if not seen or seen[-1] != text:
            seen.append(text)
        return text

    wait_for(
        column, lambda text: text == "Running", expected="with-init Running", timeout=15, max_interval=0.05
    )
    assert {"Init:0/3", "Init:1/3", "Init:2/3"} <= set(seen), seen
    assert seen.index("Init:1/3") < seen.index("Init:2/3") < seen.index("Running")
    pod = cluster.pod("with-init")
    for status in pod.status.init_container_statuses:
        terminated = status.state.terminated
        assert (terminated.reason, terminated.exit_code, status.ready) == ("Completed", 0, True)
    finished = [s.state.terminated.finished_at for s in pod.status.init_container_statuses]
    assert finished == sorted(finished)
    initialized = next(c for c in pod.status.conditions if c.type == "Initialized")
    assert initialized.status == "True"
    cluster.core.delete_namespaced_pod("with-init", "default")


def test_a_container_that_exits_is_restarted_then_backs_off(cluster: KubeletLab) -> None:
    node = cluster.topology.workers[0]
    cluster.cni_ready(node.name)
    cluster.core.create_namespaced_pod("default", pod_body("crasher", node.name, EXITING_IMAGE))
    status = wait_for(
        lambda: cluster.container("crasher"),
        lambda s: s is not None and s.restart_count >= 1 and s.last_state.terminated is not None,
        expected="crasher restarted once, its last instance terminated",
        timeout=10,
    ).value
    assert (status.last_state.terminated.exit_code, status.last_state.terminated.reason) == (3, "Error")
    backing_off = wait_for(
        lambda: cluster.container("crasher"),
        lambda s: s.state.waiting is not None and s.state.waiting.reason == "CrashLoopBackOff",
        expected="crasher in CrashLoopBackOff",
        timeout=10,
        max_interval=0.05,
    ).value
    assert backing_off.restart_count >= 2
    assert "restarting failed container=app pod=crasher_default(" in backing_off.state.waiting.message
    assert "fatal: giving up" in cluster.core.read_namespaced_pod_log("crasher", "default")
    assert cluster.pod("crasher").status.phase == "Running"  # restartPolicy Always: never terminal
    cluster.core.delete_namespaced_pod("crasher", "default")


def test_an_image_the_lab_cannot_pull_gives_err_image_pull_then_back_off(cluster: KubeletLab) -> None:
    node = cluster.topology.workers[0]
    cluster.cni_ready(node.name)
    image = "quay.io/nowhere/missing:1.0"
    cluster.core.create_namespaced_pod("default", pod_body("unpullable", node.name, image))
    reasons: set[str] = set()

    def reason() -> str:
        status = cluster.container("unpullable")
        state = status.state if status else None
        current = state.waiting.reason if state and state.waiting else "not waiting"
        reasons.add(current)
        if state and current == "ErrImagePull":
            assert image in state.waiting.message
        return current

    wait_for(
        reason,
        lambda _: {"ErrImagePull", "ImagePullBackOff"} <= reasons,
        expected="ErrImagePull then ImagePullBackOff",
        describe=lambda _: sorted(reasons),
        timeout=10,
        max_interval=0.05,
    )
    messages = {(e.reason, e.message) for e in cluster.events("unpullable")}
    assert ("Failed", "Error: ErrImagePull") in messages
    assert ("BackOff", f'Back-off pulling image "{image}"') in messages
    assert cluster.pod("unpullable").status.phase == "Pending"
    cluster.core.delete_namespaced_pod("unpullable", "default")


def test_a_pod_held_by_a_finalizer_is_killed_on_deletion_and_shows_terminating(cluster: KubeletLab) -> None:
    node = cluster.topology.workers[0]
    cluster.cni_ready(node.name)
    body = pod_body("held", node.name)
    body["metadata"]["finalizers"] = ["bgpconform.test/hold"]
    cluster.core.create_namespaced_pod("default", body)
    pod = cluster.wait_phase("held", "Running")
    directory = cluster.kubelets[node.name].pods_dir / pod.metadata.uid
    cluster.core.delete_namespaced_pod("held", "default")
    status = wait_for(
        lambda: cluster.container("held"),
        lambda s: s.state.terminated is not None,
        expected="held's container terminated once the pod is being deleted",
        timeout=15,
    ).value
    assert (status.state.terminated.reason, status.ready) == ("Completed", False)
    assert cluster.status_column("held") == "Terminating"
    assert not pod_processes(directory)
    assert not directory.exists()
    assert all(a.node != node.name or "held" not in key for key, a in cluster.lab.network.pods.items())
    cluster.core.patch_namespaced_pod("held", "default", {"metadata": {"finalizers": None}})
    wait_for(
        lambda: [p.metadata.name for p in cluster.core.list_namespaced_pod("default").items],
        lambda names: "held" not in names,
        expected="held gone once its finalizer is removed",
        timeout=10,
    )


def test_stopping_the_kubelets_stops_every_program_and_removes_every_pod_namespace(
    cluster: KubeletLab,
) -> None:
    node = cluster.topology.workers[0]
    cluster.cni_ready(node.name)
    cluster.core.create_namespaced_pod("default", pod_body("left-running", node.name))
    pod = cluster.wait_phase("left-running", "Running")
    namespaces = [a.namespace for a in cluster.lab.network.pods.values()]
    assert namespaces
    for kubelet in cluster.kubelets.values():
        kubelet.stop()
        kubelet.stop()  # idempotent
    assert cluster.lab.network.pods == {}
    assert not set(namespaces) & set(list_namespaces())
    assert not pod_processes(cluster.kubelets[node.name].pods_dir / pod.metadata.uid)
