"""The EndpointSlice controller: slices follow the selected pods' addresses and readiness."""

from __future__ import annotations

import re
from typing import Any

from bgpconform.kubeapi.client import Kube, Resources
from bgpconform.lab.cluster.endpointslices import EndpointsController, EndpointSliceController
from tests.cluster.conftest import SUFFIX, Kubectl, Start, set_pod_state, wait_object

Obj = dict[str, Any]


def simple_pod(
    name: str, *ports: tuple[str, int], app: str = "simple-pod", node: str = "k3s-worker-node-01"
) -> Obj:
    container: Obj = {"name": "nginx", "image": "nginx:1.25"}
    if ports:
        container["ports"] = [{"name": port_name, "containerPort": number} for port_name, number in ports]
    return {
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [container]},
    }


def my_service(target: int | str = 80) -> Obj:
    """The walkthrough's LoadBalancer service, port 8080."""
    return {
        "metadata": {"name": "my-service", "labels": {"team": "net"}},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "simple-pod"},
            "ports": [{"port": 8080, "targetPort": target, "protocol": "TCP"}],
        },
    }


def slices(kube: Kube) -> list[Obj]:
    return kube.items(
        Resources.ENDPOINT_SLICES, "default", label_selector="kubernetes.io/service-name=my-service"
    )


def wait_slices(kube: Kube, until: Any, expected: str) -> list[Obj]:
    found: list[Obj] = wait_object(lambda: {"items": slices(kube)}, lambda o: until(o["items"]), expected)[
        "items"
    ]
    return found


def addresses(found: list[Obj]) -> dict[str, dict[str, bool]]:
    return {e["addresses"][0]: e["conditions"] for s in found for e in s.get("endpoints") or []}


def test_slice_follows_pod_readiness(kube: Kube, start: Start, kubectl: Kubectl) -> None:
    start(EndpointSliceController)
    start(EndpointsController)
    service = kube.create(Resources.SERVICES, my_service(), "default")
    [placeholder] = wait_slices(kube, lambda s: len(s) == 1, "an empty placeholder slice")
    assert placeholder["endpoints"] == []
    assert "ports" not in placeholder

    for name in ("simple-pod", "simple-pod-2", "no-address"):
        kube.create(Resources.PODS, simple_pod(name), "default")
    kube.create(Resources.PODS, simple_pod("other", app="other"), "default")
    set_pod_state(kube, "simple-pod", "default", ip="10.42.0.10", ready=True)
    set_pod_state(kube, "simple-pod-2", "default", ip="10.42.0.11", ready=False)
    set_pod_state(kube, "other", "default", ip="10.42.0.12", ready=True)
    [found] = wait_slices(kube, lambda s: len(addresses(s)) == 2, "two endpoints")
    assert found["metadata"]["name"] == placeholder["metadata"]["name"]  # updated in place
    assert re.fullmatch(f"my-service-{SUFFIX}", found["metadata"]["name"])
    assert found["metadata"]["labels"] == {
        "team": "net",
        "kubernetes.io/service-name": "my-service",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
    }
    assert found["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "name": "my-service",
            "uid": service["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert found["addressType"] == "IPv4"
    assert found["ports"] == [{"name": "", "port": 80, "protocol": "TCP"}]
    pod = kube.get(Resources.PODS, "simple-pod", "default")
    first = next(e for e in found["endpoints"] if e["addresses"] == ["10.42.0.10"])
    assert first == {
        "addresses": ["10.42.0.10"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "nodeName": "k3s-worker-node-01",
        "targetRef": {
            "kind": "Pod",
            "namespace": "default",
            "name": "simple-pod",
            "uid": pod["metadata"]["uid"],
        },
    }
    assert addresses([found])["10.42.0.11"] == {"ready": False, "serving": False, "terminating": False}

    set_pod_state(kube, "simple-pod-2", "default", ip="10.42.0.11", ready=True)
    set_pod_state(kube, "simple-pod", "default", ip="10.42.0.10", ready=False)
    wait_slices(
        kube,
        lambda s: addresses(s).get("10.42.0.11", {}).get("ready") and not addresses(s)["10.42.0.10"]["ready"],
        "readiness flipped",
    )
    table = kubectl("get", "endpointslices").stdout
    assert found["metadata"]["name"] in table, table

    # the legacy Endpoints say the same: ready addresses apart from not-ready ones
    endpoints = wait_object(
        lambda: kube.get_or_none(Resources.ENDPOINTS, "my-service", "default"),
        lambda e: [a["ip"] for a in e.get("subsets", [{}])[0].get("addresses", [])] == ["10.42.0.11"],
        "Endpoints with simple-pod-2 ready",
    )
    assert endpoints["metadata"]["labels"] == {
        "team": "net",
        "endpointslice.kubernetes.io/skip-mirror": "true",
    }
    assert endpoints["subsets"] == [
        {
            "ports": [{"port": 80, "protocol": "TCP"}],
            "addresses": [
                {
                    "ip": "10.42.0.11",
                    "nodeName": "k3s-worker-node-01",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "default",
                        "name": "simple-pod-2",
                        "uid": kube.get(Resources.PODS, "simple-pod-2", "default")["metadata"]["uid"],
                    },
                }
            ],
            "notReadyAddresses": [
                {
                    "ip": "10.42.0.10",
                    "nodeName": "k3s-worker-node-01",
                    "targetRef": {
                        "kind": "Pod",
                        "namespace": "default",
                        "name": "simple-pod",
                        "uid": pod["metadata"]["uid"],
                    },
                }
            ],
        }
    ]

    # a terminating pod stays, serving but not ready, until it is gone
    set_pod_state(kube, "simple-pod-2", "default", ip="10.42.0.11", ready=True)
    kube.patch(Resources.PODS, "simple-pod-2", {"metadata": {"finalizers": ["test/hold"]}}, "default")
    kube.delete(Resources.PODS, "simple-pod-2", "default")
    wait_slices(
        kube,
        lambda s: addresses(s).get("10.42.0.11") == {"ready": False, "serving": True, "terminating": True},
        "simple-pod-2 terminating",
    )
    kube.patch(Resources.PODS, "simple-pod-2", {"metadata": {"finalizers": None}}, "default")
    kube.delete(Resources.PODS, "simple-pod", "default")
    [empty] = wait_slices(kube, lambda s: not addresses(s), "no endpoints left")
    assert empty["endpoints"] == []
    wait_object(
        lambda: kube.get_or_none(Resources.ENDPOINTS, "my-service", "default"),
        lambda e: "subsets" not in e,
        "Endpoints without subsets",
    )
    kube.delete(Resources.SERVICES, "my-service", "default")
    wait_object(
        lambda: {"gone": kube.get_or_none(Resources.ENDPOINTS, "my-service", "default") is None},
        lambda o: o["gone"],
        "Endpoints deleted with their service",
    )


def test_named_target_port_resolves_per_pod(kube: Kube, start: Start) -> None:
    start(EndpointSliceController)
    kube.create(Resources.SERVICES, my_service("http"), "default")
    kube.create(Resources.PODS, simple_pod("a", ("http", 8080)), "default")
    kube.create(Resources.PODS, simple_pod("b", ("http", 9090)), "default")
    kube.create(Resources.PODS, simple_pod("c", ("metrics", 9100)), "default")
    for index, name in enumerate("abc"):
        set_pod_state(kube, name, "default", ip=f"10.42.1.{index + 1}", ready=True)
    found = wait_slices(kube, lambda s: len(addresses(s)) == 3, "three endpoints")
    by_port = {
        tuple(p["port"] for p in s.get("ports") or []): [e["targetRef"]["name"] for e in s["endpoints"]]
        for s in found
    }
    assert by_port == {(8080,): ["a"], (9090,): ["b"], (): ["c"]}
    kube.delete(Resources.SERVICES, "my-service", "default")
    wait_slices(kube, lambda s: not s, "slices removed with their service")
