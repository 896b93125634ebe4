"""The patch formats: unit cases for each, then the shapes the Python client and kubectl send."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from bgpconform.lab.apiserver.listkeys import ListKeys
from bgpconform.lab.apiserver.patch import (
    MalformedPatch,
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge,
)
from tests.apiserver.conftest import AppsApi, CoreApi, pod_body, status_of

POD_KEYS = ListKeys("Pod")


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3], "new": {"x": None, "y": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "list": [3], "new": {"y": 1}}
    assert target == {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}


def test_json_patch_operations() -> None:
    doc: dict[str, Any] = {"metadata": {"labels": {"a/b": "1"}}, "items": [1, 2, 3]}
    ops = [
        {"op": "add", "path": "/metadata/labels/c", "value": "2"},
        {"op": "remove", "path": "/metadata/labels/a~1b"},
        {"op": "add", "path": "/items/-", "value": 4},
        {"op": "add", "path": "/items/0", "value": 0},
        {"op": "replace", "path": "/items/1", "value": 10},
        {"op": "move", "from": "/items/4", "path": "/last"},
        {"op": "copy", "from": "/metadata", "path": "/meta2"},
        {"op": "test", "path": "/last", "value": 4},
    ]
    assert json_patch(doc, ops) == {
        "metadata": {"labels": {"c": "2"}},
        "items": [0, 10, 2, 3],
        "last": 4,
        "meta2": {"labels": {"c": "2"}},
    }
    assert doc["items"] == [1, 2, 3]


@pytest.mark.parametrize(
    ("ops", "error"),
    [
        ([{"op": "remove", "path": "/missing"}], PatchError),
        ([{"op": "replace", "path": "/items/9", "value": 1}], PatchError),
        ([{"op": "replace", "path": "/missing/key", "value": 1}], PatchError),
        ([{"op": "test", "path": "/items/0", "value": True}], PatchError),
        ([{"op": "jump", "path": "/x"}], MalformedPatch),
        ({"op": "add"}, MalformedPatch),
        ([{"op": "add", "path": "no-slash", "value": 1}], MalformedPatch),
    ],
)
def test_json_patch_errors(ops: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        json_patch({"items": [1]}, ops)


def test_json_patch_replace_sets_a_missing_key_as_kube_apiserver_does() -> None:
    """LB IPAM's first status write on a new pool is a `replace` of `/status`, which does not exist yet."""
    patched = json_patch({"spec": {}}, [{"op": "replace", "path": "/status", "value": {"conditions": []}}])
    assert patched == {"spec": {}, "status": {"conditions": []}}


def test_strategic_merge_merges_containers_by_name() -> None:
    pod = {
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
                {"name": "sidecar", "image": "busybox", "args": ["a", "b"]},
            ]
        }
    }
    patch = {"spec": {"containers": [{"name": "sidecar", "args": ["c"]}, {"name": "new", "image": "x"}]}}
    merged = strategic_merge(pod, patch, POD_KEYS)
    assert merged["spec"]["containers"] == [
        {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
        {"name": "sidecar", "image": "busybox", "args": ["c"]},
        {"name": "new", "image": "x"},
    ]


def test_strategic_merge_directives_kubectl_sends() -> None:
    pod = {
        "metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
        "spec": {"containers": [{"name": "one", "image": "i"}, {"name": "two", "image": "j"}]},
    }
    patch = {
        "$setElementOrder/containers": [{"name": "two"}, {"name": "one"}],
        "metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a"],
            "finalizers": ["c"],
            "labels": {"$patch": "replace", "y": "2"},
        },
        "spec": {
            "containers": [{"name": "one", "$patch": "delete"}],
            "$setElementOrder/containers": [{"name": "two"}],
        },
    }
    merged = strategic_merge(pod, patch, POD_KEYS)
    assert merged["metadata"] == {"finalizers": ["b", "c"], "labels": {"y": "2"}}
    assert merged["spec"]["containers"] == [{"name": "two", "image": "j"}]


def test_strategic_merge_retain_keys_and_replace_lists() -> None:
    keys = ListKeys("Deployment")
    deployment = {
        "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {"tolerations": [{"key": "a"}]}},
        }
    }
    patch = {
        "spec": {
            "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
            "template": {"spec": {"tolerations": [{"key": "b"}]}},
        }
    }
    merged = strategic_merge(deployment, patch, keys)
    assert merged["spec"]["strategy"] == {"type": "Recreate"}
    assert merged["spec"]["template"]["spec"]["tolerations"] == [{"key": "b"}]


def test_python_client_dict_patches_are_strategic(core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("p", ("app", "sidecar")))
    patched = core.patch_namespaced_pod(
        "p", "default", {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}
    )
    assert [(c.name, c.image) for c in patched.spec.containers] == [
        ("app", "nginx:2"),
        ("sidecar", "nginx:1.25"),
    ]


def test_json_patch_and_merge_patch_through_the_api(core: CoreApi) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"a": "1", "b": "2"}})
    patched = core.patch_namespaced_config_map(
        "cm",
        "default",
        [{"op": "replace", "path": "/data/a", "value": "10"}, {"op": "remove", "path": "/data/b"}],
    )
    assert patched.data == {"a": "10"}
    merged = core.patch_namespaced_config_map(
        "cm", "default", {"data": {"c": "3"}}, _content_type="application/merge-patch+json"
    )
    assert merged.data == {"a": "10", "c": "3"}
    with pytest.raises(client.ApiException) as raised:
        core.patch_namespaced_config_map("cm", "default", [{"op": "remove", "path": "/data/nope"}])
    assert raised.value.status == 422


def test_patch_with_stale_resource_version_conflicts(core: CoreApi) -> None:
    node = core.create_node({"metadata": {"name": "n1"}})
    core.patch_node("n1", {"metadata": {"labels": {"a": "b"}}})
    stale = {"metadata": {"labels": {"bgp-policy": "a"}, "resourceVersion": node.metadata.resource_version}}
    with pytest.raises(client.ApiException) as raised:
        core.patch_node("n1", stale, _content_type="application/merge-patch+json")
    assert raised.value.status == 409
    assert status_of(raised.value)["reason"] == "Conflict"


def test_restart_annotation_patch_bumps_generation(apps: AppsApi) -> None:
    body = {
        "metadata": {"name": "cilium-operator"},
        "spec": {
            "selector": {"matchLabels": {"io.cilium/app": "operator"}},
            "template": {
                "metadata": {"labels": {"io.cilium/app": "operator"}},
                "spec": {
                    "containers": [{"name": "cilium-operator", "image": "quay.io/cilium/operator:v1.13.4"}]
                },
            },
        },
    }
    apps.create_namespaced_deployment("kube-system", body)
    restart = {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}
    }
    patched = apps.patch_namespaced_deployment("cilium-operator", "kube-system", restart)
    assert patched.spec.template.metadata.annotations == {"kubectl.kubernetes.io/restartedAt": "now"}
    assert patched.spec.template.metadata.labels == {"io.cilium/app": "operator"}
    assert patched.metadata.generation == 2
