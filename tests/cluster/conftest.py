"""Fixtures: a fresh API server per test, controllers started on it, nodes and pod states to drive them.

The tests play the parts that are not under test: they register nodes and flip their Ready condition
as a kubelet would, and a stand-in kubelet (`FakeKubelet`) reports every bound pod Running and Ready
with an address, so the controllers are observed through the API only.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from bgpconform.kubeapi.client import STRATEGIC_MERGE_PATCH, ApiException, Kube, Resources, new_api_client
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.cluster.controller import Controller
from bgpconform.lab.cluster.names import SAFE_ALPHABET
from bgpconform.lab.cluster.replicaset import timestamp
from bgpconform.waiting import wait_for

C = TypeVar("C", bound=Controller)
Obj = dict[str, Any]

SUFFIX = f"[{SAFE_ALPHABET}]{{5}}"  # a generateName suffix
HASH = f"[{SAFE_ALPHABET}]{{1,10}}"  # a pod-template-hash / controller-revision-hash
KUBECTL_CANDIDATES = ("/usr/lib/google-cloud-sdk/bin/kubectl.1.32", "kubectl")


class Start(Protocol):
    def __call__(self, cls: type[C], **kwargs: Any) -> C: ...


@pytest.fixture
def start(server: ApiServer) -> Iterator[Start]:
    """Start a controller with a client of its own; all are stopped, newest first, at teardown."""
    started: list[tuple[Controller, Any]] = []

    def run(cls: type[C], **kwargs: Any) -> C:
        api = new_api_client(str(server.kubeconfig_path))
        controller = cls(Kube(api), **kwargs)
        controller.start()
        started.append((controller, api))
        return controller

    yield run
    for controller, api in reversed(started):
        controller.stop()
        api.close()


class FakeKubelet(Controller):
    """Reports each pod bound to a node Running and Ready with the next 10.42.0.x address."""

    name = "fake-kubelet"

    def __init__(self, kube: Kube, *, resync: float = 5.0) -> None:
        super().__init__(kube, resync=resync)
        self.pods = self.inform(Resources.PODS)
        self._addresses = (f"10.42.{n // 250}.{n % 250 + 2}" for n in itertools.count())
        self._started: set[str] = set()  # pod uids already reported, whatever the cache still shows

    def reconcile(self) -> None:
        for pod in self.pods.objects():
            meta, spec = pod["metadata"], pod.get("spec") or {}
            if not spec.get("nodeName") or meta["uid"] in self._started:
                continue
            self._started.add(meta["uid"])
            try:
                set_pod_state(
                    self.kube, meta["name"], meta["namespace"], ip=next(self._addresses), ready=True
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise


def set_pod_state(kube: Kube, name: str, namespace: str, *, ip: str | None, ready: bool) -> Obj:
    """What a kubelet reports: phase, addresses, the Ready condition and container states."""
    pod = kube.get(Resources.PODS, name, namespace)
    now = timestamp()
    containers = [
        {
            "name": c["name"],
            "image": c["image"],
            "ready": ready,
            "restartCount": 0,
            "started": True,
            "state": {"running": {"startedAt": now}},
        }
        for c in pod["spec"]["containers"]
    ]
    status: Obj = {
        "phase": "Running",
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastTransitionTime": now,
                "lastProbeTime": None,
            },
            {
                "type": "ContainersReady",
                "status": "True" if ready else "False",
                "lastTransitionTime": now,
                "lastProbeTime": None,
            },
        ],
        "containerStatuses": containers,
        "startTime": now,
    }
    if ip is not None:
        status |= {"podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.1.201"}
    return kube.patch(
        Resources.PODS,
        name,
        {"status": status},
        namespace,
        content_type=STRATEGIC_MERGE_PATCH,
        subresource="status",
    )


def ready_condition(ready: bool) -> Obj:
    now = timestamp()
    if ready:
        reason, message = "KubeletReady", "kubelet is posting ready status"
    else:
        reason = "KubeletNotReady"
        message = (
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
            "message:Network plugin returns error: cni plugin not initialized"
        )
    return {
        "type": "Ready",
        "status": "True" if ready else "False",
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }


def add_node(kube: Kube, name: str, *, ready: bool, labels: dict[str, str] | None = None) -> Obj:
    """A node as a k3s kubelet registers it (conditions written at once, as the tests drive them)."""
    body = {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})},
        },
        "spec": {},
        "status": {"conditions": [ready_condition(ready)]},
    }
    return kube.create(Resources.NODES, body)


def set_node_ready(kube: Kube, name: str, ready: bool) -> Obj:
    patch = {"status": {"conditions": [ready_condition(ready)]}}
    return kube.patch(Resources.NODES, name, patch, content_type=STRATEGIC_MERGE_PATCH, subresource="status")


def pods(kube: Kube, namespace: str = "default", label_selector: str | None = None) -> list[Obj]:
    return kube.items(Resources.PODS, namespace, label_selector=label_selector)


def names(objects: list[Obj]) -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in objects)


def wait_pods(
    kube: Kube,
    until: Callable[[list[Obj]], bool],
    expected: str,
    *,
    label_selector: str | None = None,
    namespace: str = "default",
    timeout: float = 10.0,
) -> list[Obj]:
    """Wait for the pods matching `label_selector`; a timeout shows name, node and phase of each."""
    return wait_for(
        lambda: pods(kube, namespace, label_selector),
        until,
        expected=expected,
        timeout=timeout,
        describe=lambda found: [
            (p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status", {}).get("phase"))
            for p in found
        ],
    ).value


def wait_object(
    get: Callable[[], Obj | None], until: Callable[[Obj], bool], expected: str, timeout: float = 10.0
) -> Obj:
    found = wait_for(
        get, lambda obj: obj is not None and until(obj), expected=expected, timeout=timeout
    ).value
    assert found is not None
    return found


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(server: ApiServer, tmp_path: Path) -> Kubectl:
    """kubectl against the server with its own HOME; skips when no kubectl is installed."""
    override = os.environ.get("BGPCONFORM_KUBECTL")
    binary = next(
        (found for c in ((override,) if override else KUBECTL_CANDIDATES) if (found := shutil.which(c))), None
    )
    if binary is None:
        pytest.skip("kubectl is not installed")

    def run(*args: str, check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig_path), "HOME": str(tmp_path)}
        argv = [binary, "--cache-dir", str(tmp_path / "kube-cache"), *args]
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    return run
