"""CRDs: discovery, serving, structural-schema validation, pruning, defaults and the status subresource."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from bgpconform.lab.apiserver.server import ApiServer
from tests.apiserver.conftest import ApiClient, CustomApi, ExtensionsApi, fixture, status_of

GROUP, VERSION = "cilium.io", "v2alpha1"
POOLS, POLICIES = "ciliumloadbalancerippools", "ciliumbgppeeringpolicies"


def _get(server: ApiServer, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_crd_appears_in_and_leaves_discovery_within_one_request(
    server: ApiServer, extensions: ExtensionsApi
) -> None:
    assert _get(server, "/apis/cilium.io/v2alpha1")[0] == 404
    assert "cilium.io" not in [g["name"] for g in _get(server, "/apis")[1]["groups"]]
    extensions.create_custom_resource_definition(fixture("ciliumbgppeeringpolicies.yaml"))
    code, listing = _get(server, "/apis/cilium.io/v2alpha1")
    assert code == 200
    assert listing["resources"] == [
        {
            "name": POLICIES,
            "singularName": "ciliumbgppeeringpolicy",
            "namespaced": False,
            "kind": "CiliumBGPPeeringPolicy",
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": ["bgpp"],
            "categories": ["cilium", "ciliumbgp"],
        }
    ]
    groups = {g["name"]: g for g in _get(server, "/apis")[1]["groups"]}
    assert groups["cilium.io"]["preferredVersion"] == {
        "groupVersion": "cilium.io/v2alpha1",
        "version": "v2alpha1",
    }
    assert _get(server, "/apis/cilium.io/v2alpha1/ciliumbgppeeringpolicies")[0] == 200
    extensions.delete_custom_resource_definition("ciliumbgppeeringpolicies.cilium.io")
    assert _get(server, "/apis/cilium.io/v2alpha1")[0] == 404
    assert "cilium.io" not in [g["name"] for g in _get(server, "/apis")[1]["groups"]]


def test_missing_crd_answers_like_the_walkthrough(custom: CustomApi) -> None:
    with pytest.raises(client.ApiException) as raised:
        custom.list_cluster_custom_object(GROUP, VERSION, POLICIES)
    assert raised.value.status == 404
    status = status_of(raised.value)
    assert status["reason"] == "NotFound"
    assert status["message"] == "the server could not find the requested resource"


def test_crd_status_is_established(extensions: ExtensionsApi) -> None:
    created = extensions.create_custom_resource_definition(fixture("ciliumloadbalancerippools.yaml"))
    conditions = {c.type: c.status for c in created.status.conditions}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert created.status.accepted_names.short_names == ["ippools", "ippool", "lbippool", "lbippools"]
    assert created.status.stored_versions == ["v2alpha1"]
    assert created.metadata.finalizers == ["customresourcecleanup.apiextensions.k8s.io"]
    assert created.metadata.creation_timestamp is not None


def test_invalid_crd_is_rejected(extensions: ExtensionsApi) -> None:
    body = fixture("ciliumbgppeeringpolicies.yaml")
    body["metadata"]["name"] = "wrong.cilium.io"
    with pytest.raises(client.ApiException) as raised:
        extensions.create_custom_resource_definition(body)
    assert raised.value.status == 422
    causes = status_of(raised.value)["details"]["causes"]
    assert causes[0]["field"] == "metadata.name"
    assert (
        causes[0]["message"] == 'Invalid value: "wrong.cilium.io": must be spec.names.plural+"."+spec.group'
    )


def test_custom_objects_are_served_with_defaults(cilium_crds: None, custom: CustomApi) -> None:
    created = custom.create_cluster_custom_object(GROUP, VERSION, POOLS, fixture("cilium-ippool.yaml"))
    assert created["spec"] == {"cidrs": [{"cidr": "172.198.1.0/24"}], "disabled": False}
    assert created["metadata"]["generation"] == 1
    assert "status" not in created
    fetched = custom.get_cluster_custom_object(GROUP, VERSION, POOLS, "lb-pool")
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    listed = custom.list_cluster_custom_object(GROUP, VERSION, POOLS)
    assert listed["kind"] == "CiliumLoadBalancerIPPoolList"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["lb-pool"]


def test_schema_violations_are_422_with_field_paths(cilium_crds: None, custom: CustomApi) -> None:
    body = fixture("cilium-bgp-policy.yaml")
    router = body["spec"]["virtualRouters"][0]
    del router["localASN"]
    router["neighbors"][0]["peerAddress"] = "192.168.1.1"
    router["neighbors"][0]["peerASN"] = "64512"
    with pytest.raises(client.ApiException) as raised:
        custom.create_cluster_custom_object(GROUP, VERSION, POLICIES, body)
    assert raised.value.status == 422
    status = status_of(raised.value)
    assert status["reason"] == "Invalid"
    assert status["details"]["kind"] == "CiliumBGPPeeringPolicy"
    assert status["details"]["group"] == "cilium.io"
    messages = {cause["field"]: cause["message"] for cause in status["details"]["causes"]}
    assert messages == {
        "spec.virtualRouters[0].localASN": "Required value",
        "spec.virtualRouters[0].neighbors[0].peerASN": (
            'Invalid value: "string": spec.virtualRouters[0].neighbors[0].peerASN in body must be of type '
            'integer: "string"'
        ),
        "spec.virtualRouters[0].neighbors[0].peerAddress": (
            'Invalid value: "192.168.1.1": spec.virtualRouters[0].neighbors[0].peerAddress in body must be '
            'of type cidr: "192.168.1.1"'
        ),
    }
    assert status["message"].startswith(
        'CiliumBGPPeeringPolicy.cilium.io "01-bgp-peering-policy" is invalid: ['
    )


def test_unknown_fields_are_pruned_with_a_warning(cilium_crds: None, api_client: ApiClient) -> None:
    body = fixture("cilium-ippool.yaml")
    body["spec"]["blocks"] = [{"cidr": "10.0.0.0/24"}]  # a 1.15 field the 1.13 schema does not know
    body["metadata"]["bogus"] = "x"
    response = api_client.call_api(
        "POST",
        api_client.configuration.host + "/apis/cilium.io/v2alpha1/ciliumloadbalancerippools",
        header_params={"Content-Type": "application/json"},
        body=body,
    )
    response.read()
    created = json.loads(response.data)
    assert "blocks" not in created["spec"]
    assert "bogus" not in created["metadata"]
    assert response.headers.getlist("Warning") == [
        '299 - "unknown field \\"spec.blocks\\""',
        '299 - "unknown field \\"metadata.bogus\\""',
    ]


def test_strict_field_validation_rejects_unknown_fields(cilium_crds: None, custom: CustomApi) -> None:
    body = fixture("cilium-ippool.yaml")
    body["spec"]["blocks"] = []
    with pytest.raises(client.ApiException) as raised:
        custom.create_cluster_custom_object(GROUP, VERSION, POOLS, body, field_validation="Strict")
    assert raised.value.status == 400
    assert status_of(raised.value)["message"] == (
        'CiliumLoadBalancerIPPool in version "v2alpha1" cannot be handled as a CiliumLoadBalancerIPPool: '
        'strict decoding error: unknown field "spec.blocks"'
    )


def test_status_subresource_is_honoured(cilium_crds: None, custom: CustomApi) -> None:
    custom.create_cluster_custom_object(GROUP, VERSION, POOLS, fixture("cilium-ippool.yaml"))
    condition = {
        "type": "io.cilium/conflict",
        "status": "False",
        "reason": "resolved",
        "message": "",
        "lastTransitionTime": "2023-07-26T15:00:56Z",
    }
    updated = custom.patch_cluster_custom_object_status(
        GROUP, VERSION, POOLS, "lb-pool", {"status": {"conditions": [condition]}, "spec": {"disabled": True}}
    )
    assert updated["status"]["conditions"] == [condition]
    assert updated["spec"]["disabled"] is False
    assert updated["metadata"]["generation"] == 1
    main = custom.patch_cluster_custom_object(
        GROUP, VERSION, POOLS, "lb-pool", {"status": {"conditions": []}, "spec": {"disabled": True}}
    )
    assert main["status"]["conditions"] == [condition]
    assert main["spec"]["disabled"] is True
    assert main["metadata"]["generation"] == 2
    bad = dict(condition, status="Maybe")
    with pytest.raises(client.ApiException) as raised:
        custom.patch_cluster_custom_object_status(
            GROUP, VERSION, POOLS, "lb-pool", {"status": {"conditions": [bad]}}
        )
    assert raised.value.status == 422
    assert status_of(raised.value)["details"]["causes"][0] == {
        "reason": "FieldValueNotSupported",
        "message": 'Unsupported value: "Maybe": supported values: "True", "False", "Unknown"',
        "field": "status.conditions[0].status",
    }


def test_custom_resources_need_a_resource_version_to_update(cilium_crds: None, custom: CustomApi) -> None:
    created = custom.create_cluster_custom_object(GROUP, VERSION, POOLS, fixture("cilium-ippool.yaml"))
    body = dict(created)
    body["metadata"] = {"name": "lb-pool"}
    with pytest.raises(client.ApiException) as raised:
        custom.replace_cluster_custom_object(GROUP, VERSION, POOLS, "lb-pool", body)
    assert raised.value.status == 422
    assert status_of(raised.value)["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    body["spec"]["disabled"] = True
    replaced = custom.replace_cluster_custom_object(GROUP, VERSION, POOLS, "lb-pool", body)
    assert replaced["spec"]["disabled"] is True


def test_strategic_merge_patch_is_refused_for_custom_resources(cilium_crds: None, custom: CustomApi) -> None:
    custom.create_cluster_custom_object(GROUP, VERSION, POOLS, fixture("cilium-ippool.yaml"))
    with pytest.raises(client.ApiException) as raised:
        custom.patch_cluster_custom_object(
            GROUP,
            VERSION,
            POOLS,
            "lb-pool",
            {"spec": {"disabled": True}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert raised.value.status == 415
    assert status_of(raised.value)["reason"] == "UnsupportedMediaType"


def test_deleting_a_crd_deletes_its_objects(
    cilium_crds: None, custom: CustomApi, extensions: ExtensionsApi
) -> None:
    custom.create_cluster_custom_object(GROUP, VERSION, POOLS, fixture("cilium-ippool.yaml"))
    extensions.delete_custom_resource_definition("ciliumloadbalancerippools.cilium.io")
    extensions.create_custom_resource_definition(fixture("ciliumloadbalancerippools.yaml"))
    assert custom.list_cluster_custom_object(GROUP, VERSION, POOLS)["items"] == []


def test_multiple_served_versions_share_objects(extensions: ExtensionsApi, custom: CustomApi) -> None:
    crd = fixture("ciliumloadbalancerippools.yaml")
    old = crd["spec"]["versions"][0]
    new = dict(old, name="v2", storage=False)
    crd["spec"]["versions"] = [old, new]
    extensions.create_custom_resource_definition(crd)
    custom.create_cluster_custom_object(GROUP, VERSION, POOLS, fixture("cilium-ippool.yaml"))
    as_v2 = custom.get_cluster_custom_object(GROUP, "v2", POOLS, "lb-pool")
    assert as_v2["apiVersion"] == "cilium.io/v2"
    assert (
        as_v2["metadata"]["uid"]
        == custom.get_cluster_custom_object(GROUP, VERSION, POOLS, "lb-pool")["metadata"]["uid"]
    )
