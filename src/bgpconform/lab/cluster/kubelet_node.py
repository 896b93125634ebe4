"""The Node object a k3s v1.27.3 agent registers and the status its kubelet posts, as pure functions.

Values follow what `kubectl get node -o yaml` shows on k3s (FACTS.md, "k3s and k3d"; the walkthrough's
`kubectl get nodes`: VERSION `v1.27.3+k3s1`, ROLES `control-plane,master` on the server, NotReady until
a CNI runs). The hardware figures are a Raspberry Pi 4 with 4 GB, the walkthrough's machines.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bgpconform.topology import Node

# k3s v1.27.3+k3s1 embeds containerd v1.7.1-k3s1 (k3s release notes for v1.27.3+k3s1).
CONTAINER_RUNTIME_VERSION = "containerd://1.7.1-k3s1"
# The walkthrough's nodes are Raspberry Pi 4s: arm64. The lab reports that; the processes it runs are
# the host's own, whatever its architecture.
DEFAULT_ARCHITECTURE = "arm64"
KUBELET_PORT = 10250
MAX_PODS = 110  # kubelet default --max-pods
CPU_CAPACITY = "4"  # Raspberry Pi 4: four Cortex-A72 cores
MEMORY_CAPACITY_KI = 3884032  # a 4 GB Pi 4 as the kernel reports it (some RAM is reserved by firmware)
EPHEMERAL_CAPACITY_KI = 30466308  # a 32 GB SD card's root partition
EVICTION_MEMORY_KI = 100 * 1024  # kubelet default eviction-hard memory.available<100Mi
EVICTION_NODEFS_FRACTION = 0.10  # kubelet default eviction-hard nodefs.available<10%
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}

# kubelet 1.27 `runtimeState.networkErrors()` wraps the CRI NetworkReady condition as containerd 1.7
# reports it while its CNI config directory holds no network (issues: kind-ci/examples#33, rke2#4476,
# kubernetes#127563 quote it byte for byte).
CNI_NOT_INITIALIZED = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)
READY_MESSAGE = "kubelet is posting ready status"


def now_rfc3339() -> str:
    """A `metav1.Time` as the API serialises it: UTC, seconds precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """A `metav1.MicroTime` (leases, events' eventTime)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def host_os_image() -> str:
    """PRETTY_NAME of the machine's /etc/os-release, what kubelet reports as osImage."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def node_labels(node: Node, architecture: str) -> dict[str, str]:
    """Labels the kubelet sets on registration plus k3s's own (instance type, server roles)."""
    labels = {
        "beta.kubernetes.io/arch": architecture,
        "beta.kubernetes.io/instance-type": "k3s",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": architecture,
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
    }
    if node.role == "control-plane":
        # k3s servers carry both role labels: the walkthrough's ROLES column reads `control-plane,master`.
        labels["node-role.kubernetes.io/control-plane"] = "true"
        labels["node-role.kubernetes.io/master"] = "true"
    labels.update(node.labels)  # what `--node-label` would add; the topology's own labels
    return labels


def node_annotations(node: Node) -> dict[str, str]:
    """The kubelet's attach/detach annotation and the k3s agent's address annotations."""
    return {
        "k3s.io/hostname": node.name,
        "k3s.io/internal-ip": str(node.address),
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }


def node_resources(architecture: str) -> tuple[dict[str, str], dict[str, str]]:
    """Capacity and allocatable: k3s reserves nothing, so only the default eviction thresholds differ."""
    hugepages = ["1Gi", "2Mi", "32Mi", "64Ki"] if architecture == "arm64" else ["1Gi", "2Mi"]
    capacity = {
        "cpu": CPU_CAPACITY,
        "ephemeral-storage": f"{EPHEMERAL_CAPACITY_KI}Ki",
        **{f"hugepages-{size}": "0" for size in hugepages},
        "memory": f"{MEMORY_CAPACITY_KI}Ki",
        "pods": str(MAX_PODS),
    }
    allocatable = dict(capacity)
    allocatable["ephemeral-storage"] = str(int(EPHEMERAL_CAPACITY_KI * 1024 * (1 - EVICTION_NODEFS_FRACTION)))
    allocatable["memory"] = f"{MEMORY_CAPACITY_KI - EVICTION_MEMORY_KI}Ki"
    return capacity, allocatable


def node_info(node: Node, k3s_version: str, architecture: str, boot_id: str) -> dict[str, str]:
    """`status.nodeInfo`: versions as k3s reports them (kube-proxy's too, even when disabled)."""
    digest = hashlib.sha256(node.name.encode()).hexdigest()
    return {
        "architecture": architecture,
        "bootID": boot_id,
        "containerRuntimeVersion": CONTAINER_RUNTIME_VERSION,
        "kernelVersion": os.uname().release,
        "kubeProxyVersion": k3s_version,
        "kubeletVersion": k3s_version,
        "machineID": digest[:32],
        "operatingSystem": "linux",
        "osImage": host_os_image(),
        "systemUUID": str(uuid.UUID(digest[32:64])),
    }


def node_conditions(
    network_ready: bool, heartbeat: str, transitions: dict[str, tuple[str, str]]
) -> list[dict[str, str]]:
    """The kubelet's four conditions; `transitions` (type -> (status, time)) is updated in place."""
    wanted = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        (
            "Ready",
            "True" if network_ready else "False",
            "KubeletReady" if network_ready else "KubeletNotReady",
            READY_MESSAGE if network_ready else CNI_NOT_INITIALIZED,
        ),
    ]
    conditions = []
    for kind, status, reason, message in wanted:
        previous = transitions.get(kind)
        if previous is None or previous[0] != status:
            transitions[kind] = (status, heartbeat)
        conditions.append(
            {
                "type": kind,
                "status": status,
                "lastHeartbeatTime": heartbeat,
                "lastTransitionTime": transitions[kind][1],
                "reason": reason,
                "message": message,
            }
        )
    return conditions


def node_status(
    node: Node,
    *,
    k3s_version: str,
    architecture: str,
    boot_id: str,
    conditions: list[dict[str, str]],
) -> dict[str, Any]:
    capacity, allocatable = node_resources(architecture)
    return {
        "addresses": [
            {"type": "InternalIP", "address": str(node.address)},
            {"type": "Hostname", "address": node.name},
        ],
        "allocatable": allocatable,
        "capacity": capacity,
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": node_info(node, k3s_version, architecture, boot_id),
    }


def node_object(node: Node, architecture: str, status: dict[str, Any]) -> dict[str, Any]:
    """What the kubelet POSTs when its Node does not exist yet.

    The not-ready taint is what the API server's TaintNodesByCondition admission plugin (on by default
    since 1.17) adds to every new Node; the lab's API server has no admission plugins, so the kubelet
    sends it. k3s's cloud provider sets `providerID` `k3s://<name>`; the pod CIDR is the node IPAM
    controller's to set (`nodeipam`).
    """
    return {
        "metadata": {
            "name": node.name,
            "labels": node_labels(node, architecture),
            "annotations": node_annotations(node),
        },
        "spec": {
            "providerID": f"k3s://{node.name}",
            "taints": [dict(NOT_READY_TAINT)],
        },
        "status": status,
    }
