"""Server-side apply through the dynamic client: create-if-absent, ownership, conflicts, removal."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from bgpconform.lab.apiserver.server import ApiServer
from tests.apiserver.conftest import ApiClient, CoreApi, dynamic_client, fixture, status_of


@pytest.fixture
def dyn(api_client: ApiClient) -> Any:
    return dynamic_client(api_client)


def _config_map(data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "default"},
        "data": data,
    }


def _apply(dyn: Any, body: dict[str, Any], manager: str, force: bool = False) -> dict[str, Any]:
    resource = dyn.resources.get(api_version=body["apiVersion"], kind=body["kind"])
    namespace = body["metadata"].get("namespace")
    applied = resource.server_side_apply(
        body=body,
        name=body["metadata"]["name"],
        namespace=namespace,
        field_manager=manager,
        force_conflicts=force,
    )
    result: dict[str, Any] = applied.to_dict()
    return result


def _managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["manager"]: entry for entry in obj["metadata"].get("managedFields") or []}


def test_apply_creates_and_records_ownership(dyn: Any) -> None:
    created = _apply(dyn, _config_map({"a": "1"}), "lab-operator")
    assert created["data"] == {"a": "1"}
    entry = _managers(created)["lab-operator"]
    assert entry["operation"] == "Apply"
    assert entry["apiVersion"] == "v1"
    assert entry["fieldsType"] == "FieldsV1"
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_conflicting_apply_is_refused_then_forced(dyn: Any) -> None:
    _apply(dyn, _config_map({"a": "1", "shared": "s"}), "first")
    with pytest.raises(client.ApiException) as raised:
        _apply(dyn, _config_map({"a": "2", "shared": "s"}), "second")
    assert raised.value.status == 409
    status = status_of(raised.value)
    assert status["reason"] == "Conflict"
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "first" using v1: .data.a'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "first" using v1', "field": ".data.a"}
    ]
    forced = _apply(dyn, _config_map({"a": "2", "shared": "s"}), "second", force=True)
    assert forced["data"] == {"a": "2", "shared": "s"}
    managers = _managers(forced)
    assert managers["first"]["fieldsV1"] == {"f:data": {"f:shared": {}}}
    assert managers["second"]["fieldsV1"] == {"f:data": {"f:a": {}, "f:shared": {}}}


def test_fields_dropped_from_an_apply_are_removed_unless_shared(dyn: Any) -> None:
    _apply(dyn, _config_map({"a": "1", "b": "2", "c": "3"}), "owner")
    _apply(dyn, _config_map({"c": "3"}), "co-owner")
    result = _apply(dyn, _config_map({"a": "1"}), "owner")
    assert result["data"] == {"a": "1", "c": "3"}


def test_apply_conflicts_with_a_plain_update(core: CoreApi, dyn: Any) -> None:
    core.create_namespaced_config_map("default", _config_map({"a": "1"}), field_manager="kubectl-create")
    with pytest.raises(client.ApiException) as raised:
        _apply(dyn, _config_map({"a": "2"}), "lab")
    assert status_of(raised.value)["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-create" using v1: .data.a'
    )


def test_apply_merges_containers_by_name(dyn: Any) -> None:
    def deployment(*containers: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": list(containers)},
                },
            },
        }

    _apply(dyn, deployment({"name": "nginx", "image": "nginx:1.25"}), "app-team")
    sidecar = deployment({"name": "proxy", "image": "envoy"})
    merged = _apply(dyn, sidecar, "mesh")
    containers = merged["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("nginx", "nginx:1.25"), ("proxy", "envoy")]
    fields = _managers(merged)["mesh"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(fields) == ['k:{"name":"proxy"}']


def test_apply_custom_resource_and_its_status(cilium_crds: None, dyn: Any, api_client: ApiClient) -> None:
    pool = fixture("cilium-ippool.yaml")
    created = _apply(dyn, pool, "kubectl")
    assert created["spec"]["disabled"] is False
    status = {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumLoadBalancerIPPool",
        "metadata": {"name": "lb-pool"},
        "status": {
            "conditions": [
                {
                    "type": "io.cilium/ips-total",
                    "status": "Unknown",
                    "reason": "noreason",
                    "message": "254",
                    "lastTransitionTime": "2023-07-26T15:00:56Z",
                }
            ]
        },
    }
    response = api_client.call_api(
        "PATCH",
        api_client.configuration.host
        + "/apis/cilium.io/v2alpha1/ciliumloadbalancerippools/lb-pool/status?fieldManager=cilium-operator",
        header_params={"Content-Type": "application/apply-patch+yaml"},
        body=status,
    )
    response.read()
    with_status = json.loads(response.data)
    assert with_status["status"]["conditions"][0]["message"] == "254"
    entry = _managers(with_status)["cilium-operator"]
    assert entry["subresource"] == "status"
    assert with_status["spec"] == created["spec"]


def test_apply_needs_a_field_manager(server: ApiServer) -> None:
    request = urllib.request.Request(
        server.url + "/api/v1/namespaces/default/configmaps/x",
        data=json.dumps(_config_map({})).encode(),
        headers={"Content-Type": "application/apply-patch+yaml"},
        method="PATCH",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 400
    assert json.loads(raised.value.read())["message"] == (
        "PATCH, application/apply-patch+yaml requires fieldManager parameter"
    )
