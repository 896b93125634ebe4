"""Minimal OpenAPI documents so that `kubectl apply` and `create` validate without `--validate=false`.

kubectl's default `--validate=strict` asks the OpenAPI v3 document whether the PATCH operation of
the object's group-version-kind takes the `fieldValidation` parameter; when it does, kubectl skips
client-side schema checks and sends `fieldValidation=Strict`, which the server enforces on custom
resources (unknown fields are a 400). So each document lists, per kind, its PATCH operation with
that parameter, and the CRD schemas as components (`kubectl explain` reads those). The PATCH bodies
deliberately do not offer strategic merge here: kubectl then builds its three-way patches from its
compiled-in types, which needs no built-in schemas at all.

Older kubectl (1.27, which the gcloud kubectl dispatcher picks for a v1.27 server) fetches
`/openapi/v2` first and gives up without it; it gets an empty document (protobuf, as it asks), which
means "no client-side schema", while the v3 answer above still moves validation to the server.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from bgpconform.lab.apiserver.resources import Registry, ResourceType

_PARAMETERS = [
    {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}},
    {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": True}},
]
_PATCH_TYPES = ["application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json"]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(resource: ResourceType, version: str) -> str:
    if not resource.group:
        return f"io.k8s.api.core.{version}.{resource.kind}"
    reversed_group = ".".join(reversed(resource.group.split(".")))
    return f"{reversed_group}.{version}.{resource.kind}"


def document(registry: Registry, group: str, version: str, server_version: str) -> dict[str, Any] | None:
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for resource in resources:
        gvk = {"group": resource.group, "version": version, "kind": resource.kind}
        base = "/" + _gv_path(group, version)
        item = (
            f"{base}/namespaces/{{namespace}}/{resource.plural}/{{name}}"
            if resource.namespaced
            else f"{base}/{resource.plural}/{{name}}"
        )
        name = _schema_name(resource, version)
        ref = {"$ref": f"#/components/schemas/{name}"}
        paths[item] = {
            "get": {
                "operationId": f"read{resource.kind}",
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
            },
            "patch": {
                "operationId": f"patch{resource.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _PARAMETERS,
                "requestBody": {
                    "content": {t: {"schema": {"type": "object"}} for t in _PATCH_TYPES},
                    "required": True,
                },
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
            },
        }
        schema = dict(
            resource.schemas.get(version) or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
        schema["x-kubernetes-group-version-kind"] = [gvk]
        schemas[name] = schema
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def index(registry: Registry, server_version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = document(registry, group, version, server_version)
            digest = hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _proto_string(field: int, value: str) -> bytes:
    data = value.encode()
    return bytes([(field << 3) | 2, len(data)]) + data


def v2_protobuf(server_version: str) -> bytes:
    """`openapi_v2.Document{swagger: "2.0", info: {title, version}}` in protobuf wire format."""
    info = _proto_string(1, "Kubernetes") + _proto_string(2, server_version)
    return _proto_string(1, "2.0") + bytes([(2 << 3) | 2, len(info)]) + info


def v2_json(server_version: str) -> dict[str, Any]:
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": server_version},
        "paths": {},
        "definitions": {},
    }
