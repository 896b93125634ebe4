"""Built-in resources through CoreV1Api and AppsV1Api, checked against what a real server answers."""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
from kubernetes import client

from tests.apiserver.conftest import AppsApi, CoreApi, pod_body, status_of


def test_create_fills_server_owned_metadata(core: CoreApi) -> None:
    pod = core.create_namespaced_pod("default", pod_body("web", app="web"))
    meta = pod.metadata
    assert meta.name == "web"
    assert meta.namespace == "default"
    assert len(meta.uid) == 36
    assert meta.creation_timestamp is not None
    assert int(meta.resource_version) > 0
    assert pod.status.phase == "Pending"
    assert pod.spec.restart_policy == "Always"
    assert pod.spec.service_account_name == "default"
    assert pod.spec.containers[0].image_pull_policy == "IfNotPresent"


def test_generate_name_appends_five_characters(core: CoreApi) -> None:
    body = {"metadata": {"generateName": "cilium-"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
    first = core.create_namespaced_pod("kube-system", body)
    second = core.create_namespaced_pod("kube-system", body)
    for pod in (first, second):
        assert pod.metadata.name.startswith("cilium-")
        assert len(pod.metadata.name) == len("cilium-") + 5
    assert first.metadata.name != second.metadata.name


def test_resource_versions_increase_and_stale_update_conflicts(core: CoreApi) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    created.data = {"a": "2"}
    updated = core.replace_namespaced_config_map("cfg", "default", created)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    assert updated.metadata.uid == created.metadata.uid
    created.data = {"a": "3"}  # still carries the first resourceVersion
    with pytest.raises(client.ApiException) as raised:
        core.replace_namespaced_config_map("cfg", "default", created)
    assert raised.value.status == 409
    status = status_of(raised.value)
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Operation cannot be fulfilled on configmaps "cfg": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert status["details"] == {"name": "cfg", "kind": "configmaps"}


def test_unchanged_update_keeps_resource_version(core: CoreApi) -> None:
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "same"}, "data": {"a": "1"}})
    again = core.replace_namespaced_config_map("same", "default", created)
    assert again.metadata.resource_version == created.metadata.resource_version


def test_not_found_and_already_exists_shapes(core: CoreApi) -> None:
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_pod("nope", "default")
    assert missing.value.status == 404
    assert status_of(missing.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }
    core.create_namespaced_pod("default", pod_body("dup"))
    with pytest.raises(client.ApiException) as exists:
        core.create_namespaced_pod("default", pod_body("dup"))
    assert exists.value.status == 409
    assert status_of(exists.value)["reason"] == "AlreadyExists"
    assert status_of(exists.value)["message"] == 'pods "dup" already exists'


def test_create_in_missing_namespace_is_404(core: CoreApi) -> None:
    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod("nowhere", pod_body("p"))
    assert raised.value.status == 404
    assert status_of(raised.value)["message"] == 'namespaces "nowhere" not found'


def test_invalid_objects_answer_422_with_causes(core: CoreApi) -> None:
    body = {"metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "c"}]}}
    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod("default", body)
    assert raised.value.status == 422
    status = status_of(raised.value)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(
        'Pod "Bad_Name" is invalid: [metadata.name: Invalid value: "Bad_Name": '
    )
    fields = [cause["field"] for cause in status["details"]["causes"]]
    assert fields == ["metadata.name", "spec.containers[0].image"]
    assert status["details"]["causes"][1] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.containers[0].image",
    }


def test_label_and_field_selectors(core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("a", app="web", tier="front"))
    core.create_namespaced_pod("default", pod_body("b", app="web", tier="back"))
    core.create_namespaced_pod("kube-system", pod_body("c", app="dns"))

    def names(**kwargs: Any) -> list[str]:
        return [p.metadata.name for p in core.list_pod_for_all_namespaces(**kwargs).items]

    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app=web,tier!=front") == ["b"]
    assert names(label_selector="tier in (front,side)") == ["a"]
    assert names(label_selector="!tier") == ["c"]
    assert names(field_selector="metadata.namespace=kube-system") == ["c"]
    assert names(field_selector="metadata.name!=a,metadata.namespace=default") == ["b"]
    assert names(field_selector="status.phase=Pending", label_selector="tier") == ["a", "b"]
    with pytest.raises(client.ApiException) as raised:
        core.list_pod_for_all_namespaces(field_selector="spec.unknown=x")
    assert raised.value.status == 400
    assert status_of(raised.value)["message"] == "field label not supported: spec.unknown"
    with pytest.raises(client.ApiException) as bad:
        core.list_pod_for_all_namespaces(label_selector="a in (b")
    assert bad.value.status == 400


def test_list_limit_and_continue(core: CoreApi) -> None:
    for index in range(5):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{index}"}})
    first = core.list_namespaced_config_map("default", limit=2)
    assert [c.metadata.name for c in first.items] == ["cm-0", "cm-1"]
    assert first.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map("default", limit=10, _continue=first.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["cm-2", "cm-3", "cm-4"]
    assert rest.metadata._continue is None


def test_status_subresource_separates_spec_and_status(core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("st"))
    status = {"status": {"phase": "Running", "podIP": "10.136.1.5"}, "spec": {"nodeName": "ignored"}}
    patched = core.patch_namespaced_pod_status("st", "default", status)
    assert patched.status.phase == "Running"
    assert patched.spec.node_name is None
    main = core.patch_namespaced_pod(
        "st", "default", {"status": {"phase": "Failed"}, "spec": {"nodeName": "n1"}}
    )
    assert main.status.phase == "Running"
    assert main.spec.node_name == "n1"


def test_delete_returns_pod_and_status_for_others(core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("gone"))
    deleted = core.delete_namespaced_pod("gone", "default")
    assert deleted.metadata.name == "gone"
    core.create_namespaced_config_map("default", {"metadata": {"name": "gone"}})
    answer = core.delete_namespaced_config_map("gone", "default")
    assert answer["status"] == "Success"
    assert answer["details"]["kind"] == "configmaps"
    with pytest.raises(client.ApiException) as raised:
        core.read_namespaced_pod("gone", "default")
    assert raised.value.status == 404


def test_finalizers_hold_deletion_until_removed(core: CoreApi) -> None:
    body = pod_body("held")
    body["metadata"]["finalizers"] = ["lab.test/hold"]
    core.create_namespaced_pod("default", body)
    answer = core.delete_namespaced_pod("held", "default")
    assert answer.metadata.deletion_timestamp is not None
    held = core.read_namespaced_pod("held", "default")
    assert held.metadata.deletion_timestamp is not None
    with pytest.raises(client.ApiException) as raised:
        core.patch_namespaced_pod(
            "held", "default", {"metadata": {"finalizers": ["lab.test/hold", "another"]}}
        )
    assert raised.value.status == 422
    core.patch_namespaced_pod("held", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_pod("held", "default")
    assert gone.value.status == 404


def test_namespace_deletion_removes_content(core: CoreApi) -> None:
    core.create_namespace({"metadata": {"name": "scratch"}})
    assert core.read_namespace("scratch").metadata.labels == {"kubernetes.io/metadata.name": "scratch"}
    core.create_namespaced_pod("scratch", pod_body("p"))
    core.create_namespaced_config_map("scratch", {"metadata": {"name": "c"}})
    core.delete_namespace("scratch")
    assert core.list_namespaced_pod("scratch").items == []
    assert "scratch" not in [n.metadata.name for n in core.list_namespace().items]


def test_terminating_namespace_refuses_content(core: CoreApi) -> None:
    core.create_namespace({"metadata": {"name": "closing"}})
    held = pod_body("held")
    held["metadata"]["finalizers"] = ["lab.test/hold"]
    core.create_namespaced_pod("closing", held)
    core.delete_namespace("closing")
    assert core.read_namespace("closing").status.phase == "Terminating"
    with pytest.raises(client.ApiException) as raised:
        core.create_namespaced_pod("closing", pod_body("late"))
    assert raised.value.status == 403
    assert "because it is being terminated" in status_of(raised.value)["message"]
    core.patch_namespaced_pod("held", "closing", {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as gone:
        core.read_namespace("closing")
    assert gone.value.status == 404


def test_service_gets_cluster_ip_and_node_ports(core: CoreApi) -> None:
    body = {
        "metadata": {"name": "my-service"},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "simple-pod"},
            "ports": [{"port": 8080, "targetPort": 80}],
        },
    }
    service = core.create_namespaced_service("default", body)
    assert ipaddress.ip_address(service.spec.cluster_ip) in ipaddress.ip_network("10.43.0.0/16")
    assert service.spec.cluster_ips == [service.spec.cluster_ip]
    port = service.spec.ports[0]
    assert port.protocol == "TCP"
    assert 30000 <= port.node_port <= 32767
    assert service.spec.external_traffic_policy == "Cluster"
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "172.198.1.246"}]}}}
    with_ip = core.patch_namespaced_service_status("my-service", "default", status)
    assert with_ip.status.load_balancer.ingress[0].ip == "172.198.1.246"
    again = core.patch_namespaced_service("my-service", "default", {"metadata": {"labels": {"a": "b"}}})
    assert again.spec.cluster_ip == service.spec.cluster_ip
    assert again.spec.ports[0].node_port == port.node_port
    kubernetes = core.read_namespaced_service("kubernetes", "default")
    assert kubernetes.spec.cluster_ip == "10.43.0.1"


def test_secret_string_data_becomes_data(core: CoreApi) -> None:
    secret = core.create_namespaced_secret(
        "default", {"metadata": {"name": "s"}, "stringData": {"pw": "hunter2"}}
    )
    assert secret.type == "Opaque"
    assert secret.data == {"pw": base64.b64encode(b"hunter2").decode()}
    assert secret.string_data is None


def test_deployment_defaults_generation_and_selector(apps: AppsApi) -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "n", "image": "i"}]},
            },
        },
    }
    created = apps.create_namespaced_deployment("default", body)
    assert created.metadata.generation == 1
    assert created.spec.replicas == 1
    assert created.spec.strategy.type == "RollingUpdate"
    labelled = apps.patch_namespaced_deployment("web", "default", {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("web", "default", {"spec": {"replicas": 3}})
    assert scaled.metadata.generation == 2
    status = apps.patch_namespaced_deployment_status("web", "default", {"status": {"readyReplicas": 3}})
    assert status.metadata.generation == 2
    bad = dict(body, metadata={"name": "bad"})
    bad["spec"] = dict(body["spec"], selector={"matchLabels": {"app": "other"}})
    with pytest.raises(client.ApiException) as raised:
        apps.create_namespaced_deployment("default", bad)
    assert raised.value.status == 422
    assert status_of(raised.value)["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def test_owner_references_are_garbage_collected(apps: AppsApi, core: CoreApi) -> None:
    owner = apps.create_namespaced_daemon_set(
        "kube-system",
        {
            "metadata": {"name": "cilium"},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "cilium"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "cilium"}},
                    "spec": {
                        "containers": [{"name": "cilium-agent", "image": "quay.io/cilium/cilium:v1.13.4"}]
                    },
                },
            },
        },
    )
    reference = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "cilium", "uid": owner.metadata.uid}
    body = pod_body("cilium-abcde", ("cilium-agent",), **{"k8s-app": "cilium"})
    body["metadata"]["ownerReferences"] = [reference]
    core.create_namespaced_pod("kube-system", body)
    apps.delete_namespaced_daemon_set("cilium", "kube-system")
    assert core.list_namespaced_pod("kube-system", label_selector="k8s-app=cilium").items == []


def test_dry_run_persists_nothing(core: CoreApi) -> None:
    answer = core.create_namespaced_config_map("default", {"metadata": {"name": "dry"}}, dry_run="All")
    assert answer.metadata.name == "dry"
    with pytest.raises(client.ApiException) as raised:
        core.read_namespaced_config_map("dry", "default")
    assert raised.value.status == 404
