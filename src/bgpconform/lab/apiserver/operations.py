"""The API's semantics, independent of HTTP: create, read, update, patch, apply, delete.

Everything a real server does between decoding a request and answering it lives here: server-owned
metadata, resourceVersion preconditions, status subresources, generation, field ownership, CRD
schemas, finalizers and graceful deletion, namespace termination and owner-reference garbage
collection (the last two are controller-manager work, done inline because the lab has none).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bgpconform.lab.apiserver import crds, fieldmanager
from bgpconform.lab.apiserver import errors as e
from bgpconform.lab.apiserver.builtins import Allocations, Builtins
from bgpconform.lab.apiserver.errors import ApiError, FieldError
from bgpconform.lab.apiserver.listkeys import ListKeys
from bgpconform.lab.apiserver.meta import (
    generated_name,
    new_uid,
    spec_changed,
    validate_labels,
    validate_name,
)
from bgpconform.lab.apiserver.patch import (
    MalformedPatch,
    PatchError,
    json_equal,
    json_patch,
    merge_patch,
    strategic_merge,
)
from bgpconform.lab.apiserver.resources import Registry, ResourceType
from bgpconform.lab.apiserver.schema import apply_defaults, drop_nulls, prune, prune_metadata, validate
from bgpconform.lab.apiserver.selectors import FieldSelector, LabelSelector
from bgpconform.lab.apiserver.store import Store, Stored
from bgpconform.lab.apiserver.util import jcopy, timestamp

NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
SERVICES = ("", "services")
PODS = ("", "pods")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass
class WriteOptions:
    manager: str
    dry_run: bool = False
    field_validation: str = "Warn"  # Strict, Warn or Ignore, as `fieldValidation`
    force: bool = False


@dataclass
class Result:
    """A write's answer: the object (or a Status) to send, the HTTP code, warnings for the header."""

    body: dict[str, Any]
    code: int = 200
    warnings: list[str] = field(default_factory=list)


def in_version(obj: dict[str, Any], resource: ResourceType, version: str) -> dict[str, Any]:
    """The object as served at `version` (custom resources convert with strategy None)."""
    api_version = resource.api_version(version)
    if obj.get("apiVersion") == api_version:
        return obj
    return {**obj, "apiVersion": api_version}


class Api:
    """One per server; all methods run on the server's loop thread."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.builtins = Builtins(Allocations(lambda: [s.obj for s in store.list_objects(SERVICES, None)[0]]))
        self.pod_removed: list[Callable[[str, str], None]] = []

    # --- reads ---------------------------------------------------------------------------------

    def get(self, resource: ResourceType, namespace: str | None, name: str) -> Stored:
        stored = self.store.get(resource.key, namespace or "", name)
        if stored is None:
            raise e.not_found(resource.plural, resource.group, name)
        return stored

    def list_objects(
        self,
        resource: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        *,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> tuple[list[Stored], int, str | None, int | None]:
        """Matching objects, the list resourceVersion, a continue token and the remaining count."""
        items, rv = self.store.list_objects(resource.key, namespace)
        if not labels.empty or not fields.empty:
            items = [s for s in items if labels.matches(s.labels) and fields.matches(s.obj)]
        if continue_token:
            start = _decode_continue(continue_token)
            items = [s for s in items if (s.namespace, s.name) > start]
        if limit and len(items) > limit:
            last = items[limit - 1]
            token = base64.urlsafe_b64encode(json.dumps([rv, last.namespace, last.name]).encode()).decode()
            return items[:limit], rv, token, len(items) - limit
        return items, rv, None, None

    # --- create --------------------------------------------------------------------------------

    def create(
        self,
        resource: ResourceType,
        version: str,
        namespace: str | None,
        body: Any,
        options: WriteOptions,
        *,
        managed: list[dict[str, Any]] | None = None,
    ) -> Result:
        obj = self._decode(resource, version, body)
        meta = obj["metadata"]
        warnings: list[str] = []
        if resource.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise e.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise e.bad_request("resourceVersion should not be set on objects to be created")
        generate = not meta.get("name") and meta.get("generateName")
        if generate:
            meta["name"] = generated_name(str(meta["generateName"]))
        if not meta.get("name"):
            raise e.invalid_object(
                resource.kind,
                resource.group,
                "",
                [e.required("metadata.name", "name or generateName is required")],
            )
        if resource.namespaced:
            self._check_namespace_open(resource, meta["namespace"], meta["name"])
        for key in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(key, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = timestamp()
        if resource.generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        problems = self._prepare(resource, version, None, obj, options=options, warnings=warnings)
        problems = (
            validate_name(resource.group, resource.plural, meta["name"]) + validate_labels(meta) + problems
        )
        if problems:
            raise e.invalid_object(resource.kind, resource.group, meta["name"], problems)
        if managed is not None:
            meta["managedFields"] = managed
        else:
            meta["managedFields"] = fieldmanager.record_update(
                None, obj, self._ctx(resource, version, options, "")
            )
        if not meta["managedFields"]:
            del meta["managedFields"]
        if options.dry_run:
            return Result(in_version(obj, resource, version), 201, warnings)
        with self.store.lock:
            for _ in range(8 if generate else 1):
                if self.store.get(resource.key, meta.get("namespace", ""), meta["name"]) is None:
                    break
                if not generate:
                    raise e.already_exists(resource.plural, resource.group, meta["name"])
                meta["name"] = generated_name(str(meta["generateName"]))
            else:
                raise e.already_exists(resource.plural, resource.group, meta["name"])
            stored = self.store.put(resource.key, obj)
        self._after_write(resource, stored)
        return Result(in_version(stored.obj, resource, version), 201, warnings)

    def _decode(self, resource: ResourceType, version: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise e.bad_request(
                f'{resource.kind} in version "{version}" cannot be handled as a {resource.kind}: '
                "the body is not a JSON object"
            )
        obj: dict[str, Any] = jcopy(body)
        api_version = obj.get("apiVersion")
        kind = obj.get("kind")
        expected = resource.api_version(version)
        if resource.custom and (not api_version or not kind):
            raise e.bad_request(f"Object 'Kind' is missing in '{json.dumps(body)[:200]}'")
        if api_version and api_version != expected:
            raise e.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({expected})"
            )
        if kind and kind != resource.kind:
            raise e.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise e.bad_request(
                f'{resource.kind} in version "{version}" cannot be handled as a {resource.kind}: '
                "metadata must be an object"
            )
        obj["apiVersion"] = resource.api_version(resource.storage_version)
        obj["kind"] = resource.kind
        return obj

    def _check_namespace_open(self, resource: ResourceType, namespace: str, name: str) -> None:
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise e.not_found("namespaces", "", namespace)
        if ns.obj["metadata"].get("deletionTimestamp"):
            raise e.forbidden_error(
                resource.plural,
                resource.group,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _ctx(
        self, resource: ResourceType, version: str, options: WriteOptions, subresource: str
    ) -> fieldmanager.Context:
        return fieldmanager.Context(
            keys=self.list_keys(resource, version),
            manager=options.manager,
            subresource=subresource,
            has_status=resource.has_status,
            api_version=resource.api_version(version),
            now=timestamp(),
        )

    def list_keys(self, resource: ResourceType, version: str) -> ListKeys:
        return ListKeys(resource.kind, resource.schemas.get(version), resource.custom)

    def _prepare(
        self,
        resource: ResourceType,
        version: str,
        old: dict[str, Any] | None,
        obj: dict[str, Any],
        *,
        options: WriteOptions,
        warnings: list[str],
    ) -> list[FieldError]:
        """Defaults, type-specific rules and schema validation; field errors become a 422."""
        if resource.key == CRDS:
            if old is None:
                obj.pop("status", None)
                obj["metadata"].setdefault("finalizers", [])
                if crds.CLEANUP_FINALIZER not in obj["metadata"]["finalizers"]:
                    obj["metadata"]["finalizers"].append(crds.CLEANUP_FINALIZER)
            crds.default_crd(obj)
            problems = crds.validate_crd(obj, old)
            if not problems:
                existing = self.registry.get(obj["spec"]["group"], obj["spec"]["names"]["plural"])
                if existing is not None and not existing.custom:
                    problems.append(
                        e.invalid(
                            "spec.names.plural",
                            obj["spec"]["names"]["plural"],
                            "conflicts with a built-in resource",
                        )
                    )
            if not problems:
                obj["status"] = crds.crd_status(obj, (old or {}).get("status"))
            return problems
        if resource.custom:
            if old is None and resource.has_status:
                obj.pop("status", None)
            schema = resource.schemas.get(version) or {}
            drop_nulls(obj, schema)
            apply_defaults(obj, schema)
            dropped = prune(obj, schema)
            if dropped and options.field_validation == "Strict":
                listed = ", ".join(f'unknown field "{path}"' for path in dropped)
                raise e.bad_request(
                    f'{resource.kind} in version "{version}" cannot be handled as a '
                    f"{resource.kind}: strict decoding error: {listed}"
                )
            if dropped and options.field_validation == "Warn":
                warnings.extend(f'unknown field "{path}"' for path in dropped)
            return validate(obj, schema)
        prune_metadata(obj.get("metadata"))
        if old is None:
            return self.builtins.prepare_create(resource, obj)
        return self.builtins.prepare_update(resource, old, obj)

    # --- update, patch, apply ------------------------------------------------------------------

    def update(
        self,
        resource: ResourceType,
        version: str,
        namespace: str | None,
        name: str,
        *,
        body: Any,
        subresource: str,
        options: WriteOptions,
    ) -> Result:
        old = self.get(resource, namespace, name)
        new = self._decode(resource, version, body)
        if not new["metadata"].get("resourceVersion") and resource.custom:
            raise e.invalid_object(
                resource.kind,
                resource.group,
                name,
                [e.invalid("metadata.resourceVersion", 0, "must be specified for an update")],
            )
        return self._commit(
            resource, version, old, new, subresource=subresource, options=options, managed=None
        )

    def patch(
        self,
        resource: ResourceType,
        version: str,
        namespace: str | None,
        name: str,
        *,
        patch_type: str,
        body: Any,
        subresource: str,
        options: WriteOptions,
    ) -> Result:
        if patch_type == APPLY_PATCH:
            return self._apply(
                resource, version, namespace, name, body=body, subresource=subresource, options=options
            )
        old = self.get(resource, namespace, name)
        try:
            if patch_type == MERGE_PATCH:
                if not isinstance(body, dict):
                    raise MalformedPatch("merge patch must be a JSON object")
                new = merge_patch(old.obj, body)
            elif patch_type == JSON_PATCH:
                new = json_patch(old.obj, body)
            elif patch_type == STRATEGIC_PATCH:
                if resource.custom:
                    raise e.unsupported_media_type(patch_type, [JSON_PATCH, MERGE_PATCH, APPLY_PATCH])
                new = strategic_merge(old.obj, body, self.list_keys(resource, version))
            else:
                raise e.unsupported_media_type(
                    patch_type, [JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_PATCH]
                )
        except MalformedPatch as exc:
            raise e.bad_request(str(exc)) from exc
        except PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from exc
        if not isinstance(new, dict):
            raise ApiError(422, "Invalid", "the patch does not produce an object")
        new = in_version(new, resource, version)
        decoded = self._decode(resource, version, new)
        return self._commit(
            resource, version, old, decoded, subresource=subresource, options=options, managed=None
        )

    def _apply(
        self,
        resource: ResourceType,
        version: str,
        namespace: str | None,
        name: str,
        *,
        body: Any,
        subresource: str,
        options: WriteOptions,
    ) -> Result:
        if not isinstance(body, dict):
            raise e.bad_request("apply patches must be a YAML or JSON object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise e.bad_request("apiVersion and kind must be set in an apply patch")
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != name:
            raise e.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        applied = jcopy(body)
        applied.setdefault("metadata", {})["name"] = name
        ctx = self._ctx(resource, version, options, subresource)
        old = self.store.get(resource.key, namespace or "", name)
        if old is None:
            if subresource:
                raise e.not_found(resource.plural, resource.group, name)
            self._decode(resource, version, applied)
            merged, managed = fieldmanager.apply(None, applied, ctx, options.force)
            return self.create(resource, version, namespace, merged, options, managed=managed)
        if meta.get("resourceVersion") and meta["resourceVersion"] != old.obj["metadata"]["resourceVersion"]:
            raise e.conflict(resource.plural, resource.group, name)
        try:
            merged, managed = fieldmanager.apply(
                in_version(old.obj, resource, version), applied, ctx, options.force
            )
        except fieldmanager.ApplyConflict as exc:
            raise ApiError(409, "Conflict", str(exc), {"causes": exc.causes()}) from exc
        merged["metadata"]["resourceVersion"] = old.obj["metadata"]["resourceVersion"]
        decoded = self._decode(resource, version, merged)
        return self._commit(
            resource, version, old, decoded, subresource=subresource, options=options, managed=managed
        )

    def _commit(
        self,
        resource: ResourceType,
        version: str,
        old: Stored,
        new: dict[str, Any],
        *,
        subresource: str,
        options: WriteOptions,
        managed: list[dict[str, Any]] | None,
    ) -> Result:
        old_meta = old.obj["metadata"]
        meta = new["metadata"]
        name = old_meta["name"]
        if meta.get("name") and meta["name"] != name:
            raise e.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if resource.namespaced and meta.get("namespace") and meta["namespace"] != old_meta.get("namespace"):
            raise e.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        rv = meta.get("resourceVersion")
        if rv and rv != old_meta["resourceVersion"]:
            raise e.conflict(resource.plural, resource.group, name)
        meta["name"] = name
        if resource.namespaced:
            meta["namespace"] = old_meta["namespace"]
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if subresource == "status":
            status = new.get("status")
            new = jcopy(old.obj)
            new["metadata"]["managedFields"] = old_meta.get("managedFields", [])
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        elif resource.has_status:
            if "status" in old.obj:
                new["status"] = jcopy(old.obj["status"])
            else:
                new.pop("status", None)
        warnings: list[str] = []
        problems = self._prepare(resource, version, old.obj, new, options=options, warnings=warnings)
        problems = validate_labels(meta) + problems
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                problems.append(
                    e.forbidden(
                        "metadata.finalizers",
                        f"no new finalizers can be added if the object "
                        f"is being deleted, found new finalizers "
                        f"{sorted(added)!r}",
                    )
                )
        if problems:
            raise e.invalid_object(resource.kind, resource.group, name, problems)
        if resource.generation and spec_changed(old.obj, new):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if managed is None:
            managed = fieldmanager.record_update(
                old.obj, new, self._ctx(resource, version, options, subresource)
            )
        meta["managedFields"] = managed
        if not managed:
            del meta["managedFields"]
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if _unchanged(old.obj, new):
            return Result(in_version(old.obj, resource, version), 200, warnings)
        if options.dry_run:
            return Result(in_version(new, resource, version), 200, warnings)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            removed = self._remove(resource, old_meta.get("namespace", ""), name, "Background")
            return Result(in_version(removed.obj if removed else new, resource, version), 200, warnings)
        stored = self.store.put(resource.key, new)
        self._after_write(resource, stored)
        return Result(in_version(stored.obj, resource, version), 200, warnings)

    def _after_write(self, resource: ResourceType, stored: Stored) -> None:
        if resource.key == CRDS:
            served = crds.resource_type(stored.obj)
            key = (stored.obj["spec"]["group"], stored.obj["spec"]["names"]["plural"])
            if served is None:
                self.registry.remove_custom(key)
            else:
                self.registry.set_custom(served)

    # --- delete --------------------------------------------------------------------------------

    def delete(
        self,
        resource: ResourceType,
        version: str,
        namespace: str | None,
        name: str,
        *,
        options: dict[str, Any],
        dry_run: bool,
    ) -> Result:
        old = self.get(resource, namespace, name)
        meta = old.obj["metadata"]
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise e.conflict(
                resource.plural,
                resource.group,
                name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: "
                f"{meta.get('uid')}",
            )
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta.get(
            "resourceVersion"
        ):
            raise e.conflict(
                resource.plural,
                resource.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion')}",
            )
        propagation = str(options.get("propagationPolicy") or "Background")
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        if dry_run:
            return self._deleted_answer(resource, version, old.obj)
        if resource.key == CRDS:
            self._cleanup_crd(old.obj)
        if resource.key == NAMESPACES:
            return self._delete_namespace(resource, version, old)
        finalizers = [
            f for f in meta.get("finalizers") or [] if f != crds.CLEANUP_FINALIZER or resource.key != CRDS
        ]
        if finalizers:
            if meta.get("deletionTimestamp"):
                return Result(in_version(old.obj, resource, version))
            marked = jcopy(old.obj)
            marked["metadata"]["deletionTimestamp"] = timestamp()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked["metadata"]["finalizers"] = finalizers
            stored = self.store.put(resource.key, marked)
            return Result(in_version(stored.obj, resource, version))
        removed = self._remove(resource, meta.get("namespace", ""), name, propagation)
        return self._deleted_answer(resource, version, removed.obj if removed else old.obj)

    def _deleted_answer(self, resource: ResourceType, version: str, obj: dict[str, Any]) -> Result:
        if resource.returns_deleted_object:
            return Result(in_version(obj, resource, version))
        details: dict[str, Any] = {"name": obj["metadata"]["name"]}
        if resource.group:
            details["group"] = resource.group
        details["kind"] = resource.plural
        details["uid"] = obj["metadata"].get("uid")
        return Result(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    def delete_collection(
        self,
        resource: ResourceType,
        version: str,
        namespace: str | None,
        *,
        labels: LabelSelector,
        fields: FieldSelector,
        options: dict[str, Any],
        dry_run: bool,
    ) -> Result:
        items, _, _, _ = self.list_objects(resource, namespace, labels, fields)
        deleted = []
        for stored in items:
            try:
                result = self.delete(
                    resource, version, stored.namespace or None, stored.name, options=options, dry_run=dry_run
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
                continue
            body = (
                result.body
                if result.body.get("kind") != "Status"
                else in_version(stored.obj, resource, version)
            )
            deleted.append(body)
        return Result(
            {
                "kind": resource.list_kind,
                "apiVersion": resource.api_version(version),
                "metadata": {"resourceVersion": str(self.store.resource_version)},
                "items": deleted,
            }
        )

    def _remove(self, resource: ResourceType, namespace: str, name: str, propagation: str) -> Stored | None:
        removed = self.store.remove(resource.key, namespace, name)
        if removed is None:
            return None
        obj = removed.obj
        if resource.key == CRDS:
            self.registry.remove_custom((obj["spec"]["group"], obj["spec"]["names"]["plural"]))
            self.store.end_watches((obj["spec"]["group"], obj["spec"]["names"]["plural"]))
        if resource.key == PODS:
            for callback in self.pod_removed:
                callback(namespace, name)
        self._collect_dependents(obj, propagation)
        if namespace:
            self._finish_namespace(namespace)
        return removed

    def _collect_dependents(self, owner: dict[str, Any], propagation: str) -> None:
        """Owner-reference garbage collection, as the controller-manager's collector would do it."""
        uid = owner["metadata"].get("uid")
        if not uid:
            return
        for resource_key, namespace, name in self.store.dependents(uid):
            stored = self.store.get(resource_key, namespace, name)
            resource = self.registry.get(*resource_key)
            if stored is None or resource is None:
                continue
            refs = [r for r in stored.obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if propagation != "Orphan" and not refs:
                try:
                    self.delete(
                        resource,
                        resource.storage_version,
                        namespace or None,
                        name,
                        options={"propagationPolicy": "Background"},
                        dry_run=False,
                    )
                except ApiError:
                    continue
            else:
                updated = jcopy(stored.obj)
                if refs:
                    updated["metadata"]["ownerReferences"] = refs
                else:
                    updated["metadata"].pop("ownerReferences", None)
                self.store.put(resource_key, updated)

    def _cleanup_crd(self, crd: dict[str, Any]) -> None:
        """What the CRD finalizer does: delete every instance, then let the CRD go."""
        key = (crd["spec"]["group"], crd["spec"]["names"]["plural"])
        resource = self.registry.get(*key)
        if resource is None:
            return
        items, _ = self.store.list_objects(key, None)
        for stored in items:
            self._remove(resource, stored.namespace, stored.name, "Background")
        self.store.end_watches(key)
        self.registry.remove_custom(key)

    def _delete_namespace(self, resource: ResourceType, version: str, old: Stored) -> Result:
        name = old.obj["metadata"]["name"]
        if not old.obj["metadata"].get("deletionTimestamp"):
            marked = jcopy(old.obj)
            marked["metadata"]["deletionTimestamp"] = timestamp()
            marked["metadata"]["deletionGracePeriodSeconds"] = 0
            marked["status"] = {"phase": "Terminating"}
            stored = self.store.put(NAMESPACES, marked)
        else:
            stored = old
        for resource_key, item in self.store.in_namespace(name):
            content_type = self.registry.get(*resource_key)
            if content_type is None:
                continue
            try:
                self.delete(
                    content_type, content_type.storage_version, name, item.name, options={}, dry_run=False
                )
            except ApiError:
                continue
        self._finish_namespace(name)
        current = self.store.get(NAMESPACES, "", name)
        return Result(in_version(current.obj if current else stored.obj, resource, version))

    def _finish_namespace(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None or not ns.obj["metadata"].get("deletionTimestamp"):
            return
        if self.store.namespace_empty(namespace) and not ns.obj["metadata"].get("finalizers"):
            self.store.remove(NAMESPACES, "", namespace)


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        _, namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise e.bad_request("continue key is not valid: illegal base64 data") from exc
    return (str(namespace), str(name))


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in ("resourceVersion", "managedFields")}
    managed = [
        {k: v for k, v in m.items() if k != "time"}
        for m in obj.get("metadata", {}).get("managedFields") or []
    ]
    return {**obj, "metadata": meta, "__managed": managed}


def _unchanged(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A write that changes nothing keeps its resourceVersion and sends no event, like the real server."""
    return json_equal(_comparable(old), _comparable(new))
