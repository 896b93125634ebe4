"""HTTP: URL parsing, content negotiation and rendering around `operations.Api`.

One catch-all route, because the URL space is dynamic (CRDs add paths at runtime) and a Kubernetes
path is parsed by position (`/apis/<group>/<version>/namespaces/<ns>/<resource>/<name>/<sub>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web
from multidict import MultiMapping

from bgpconform.lab.apiserver import discovery, exec_spdy, exec_ws, openapi, tables
from bgpconform.lab.apiserver import errors as e
from bgpconform.lab.apiserver.errors import ApiError
from bgpconform.lab.apiserver.exec_registry import ExecRegistry
from bgpconform.lab.apiserver.logs import LogRegistry
from bgpconform.lab.apiserver.operations import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    PODS,
    STRATEGIC_PATCH,
    Api,
    Result,
    WriteOptions,
    in_version,
)
from bgpconform.lab.apiserver.resources import Registry, ResourceType
from bgpconform.lab.apiserver.selectors import FieldSelector, parse_fields, parse_labels
from bgpconform.lab.apiserver.store import Store, Stored, dumps
from bgpconform.lab.apiserver.util import now
from bgpconform.lab.apiserver.watch import Closing, WatchRequest, default_render, stream

log = logging.getLogger(__name__)

Query = MultiMapping[str]
JSON_TYPES = ("application/json", MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", APPLY_PATCH)
DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclass
class Target:
    """What a resource URL names."""

    group: str
    version: str
    resource: ResourceType
    namespace: str | None
    name: str | None
    subresource: str


@dataclass
class ServerState:
    """Everything the handlers share; created on the server's loop."""

    store: Store
    registry: Registry
    api: Api
    logs: LogRegistry
    execs: ExecRegistry
    k3s_version: str
    address: str
    bookmark_interval: float
    closing: Closing = field(default_factory=Closing)
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    wakers: set[Callable[[], None]] = field(default_factory=set)  # log followers, woken on shutdown


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


def _json(body: Any, code: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(body=dumps(body), status=code, content_type="application/json")
    for warning in warnings or ():
        response.headers.add("Warning", "299 - " + json.dumps(warning))
    return response


def _wants_table(request: web.Request) -> bool:
    for media in request.headers.get("Accept", "").split(","):
        params = {
            p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in media.split(";")[1:] if "=" in p
        }
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def _int_param(query: Query, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise e.bad_request(f'{name}: Invalid value: "{value}": must be an integer') from exc


class Routes:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def application(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as exc:
            return _json(exc.status(), exc.code)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("internal error serving %s %s", request.method, request.path)
            error = e.internal(f"{type(exc).__name__}: {exc}")
            return _json(error.status(), error.code)

    # --- dispatch ------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        registry = self.state.registry
        get = request.method in ("GET", "HEAD")
        if not parts:
            return _json(discovery.root_paths(registry))
        head = parts[0]
        if head == "version" and len(parts) == 1:
            return _json(discovery.version_info(self.state.k3s_version))
        if head in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if head == "openapi":
            return self._openapi(request, parts)
        if head == "api":
            if len(parts) == 1:
                return _json(discovery.core_versions(self.state.address))
            group, version, rest = "", parts[1], parts[2:]
            if version != "v1":
                raise e.resource_not_found()
        elif head == "apis":
            if len(parts) == 1:
                return _json(discovery.group_list(registry))
            if len(parts) == 2:
                document = discovery.group(registry, parts[1])
                if document is None or not get:
                    raise e.resource_not_found()
                return _json(document)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise e.resource_not_found()
        if not rest:
            listing = discovery.resource_list(registry, group, version)
            if listing is None or not get:
                raise e.resource_not_found()
            return _json(listing)
        target = self._target(group, version, rest)
        return await self._resource(request, target)

    def _openapi(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        if parts[1:] == ["v2"]:
            if "protobuf" in request.headers.get("Accept", ""):
                body = openapi.v2_protobuf(self.state.k3s_version)
                return web.Response(body=body, headers={"Content-Type": openapi.V2_PROTOBUF})
            return _json(openapi.v2_json(self.state.k3s_version))
        if parts[1:2] != ["v3"]:
            raise e.resource_not_found()
        if len(parts) == 2:
            return _json(openapi.index(self.state.registry, self.state.k3s_version))
        rest = parts[2:]
        if rest[0] == "api" and len(rest) == 2:
            group, version = "", rest[1]
        elif rest[0] == "apis" and len(rest) == 3:
            group, version = rest[1], rest[2]
        else:
            raise e.resource_not_found()
        document = openapi.document(self.state.registry, group, version, self.state.k3s_version)
        if document is None:
            raise e.resource_not_found()
        return _json(document)

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise e.resource_not_found()
        resource = self.state.registry.lookup(group, version, rest[0])
        if resource is None or (namespace is not None and not resource.namespaced):
            raise e.resource_not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in resource.subresources:
            raise e.resource_not_found()
        return Target(group, version, resource, namespace, name, sub)

    async def _resource(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        query = request.query
        resource = target.resource
        if target.name is None:
            if method == "GET":
                if _true(query.get("watch")):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST" and (target.namespace is not None or not resource.namespaced):
                body = await self._body(request)
                result = self.state.api.create(
                    resource, target.version, target.namespace, body, self._write_options(request)
                )
                return self._result(request, target, result)
            if method == "DELETE" and "deletecollection" in resource.verbs:
                labels, fields = self._selectors(query, resource)
                result = self.state.api.delete_collection(
                    resource,
                    target.version,
                    target.namespace,
                    labels=labels,
                    fields=fields,
                    options=await self._delete_options(request),
                    dry_run=self._dry_run(query),
                )
                return _json(result.body, result.code)
            raise e.method_not_allowed()
        if resource.namespaced and target.namespace is None:
            raise e.resource_not_found()
        if target.subresource == "log":
            if method != "GET":
                raise e.method_not_allowed()
            return await self._log(request, target)
        if target.subresource == "exec":
            if method not in ("GET", "POST"):
                raise e.method_not_allowed()
            return await self._exec(request, target)
        api = self.state.api
        name = target.name
        if method == "GET":
            stored = api.get(resource, target.namespace, name)
            return self._object(request, target, stored.obj)
        if method == "PUT":
            body = await self._body(request)
            result = api.update(
                resource,
                target.version,
                target.namespace,
                name,
                body=body,
                subresource=target.subresource,
                options=self._write_options(request),
            )
            return self._result(request, target, result)
        if method == "PATCH":
            content_type = request.content_type
            if content_type not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH, APPLY_PATCH):
                raise e.unsupported_media_type(
                    content_type, [JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_PATCH]
                )
            options = self._write_options(request)
            if content_type == APPLY_PATCH:
                if not query.get("fieldManager"):
                    raise e.bad_request("PATCH, application/apply-patch+yaml requires fieldManager parameter")
                options.force = _true(query.get("force"))
            elif query.get("force") is not None:
                raise e.bad_request("force may not be specified for non-apply patch")
            body = await self._body(request)
            result = api.patch(
                resource,
                target.version,
                target.namespace,
                name,
                patch_type=content_type,
                body=body,
                subresource=target.subresource,
                options=options,
            )
            return self._result(request, target, result)
        if method == "DELETE" and not target.subresource:
            result = api.delete(
                resource,
                target.version,
                target.namespace,
                name,
                options=await self._delete_options(request),
                dry_run=self._dry_run(query),
            )
            return _json(result.body, result.code, result.warnings)
        raise e.method_not_allowed()

    # --- request decoding ----------------------------------------------------------------------

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        content_type = request.content_type
        if not raw.strip():
            raise e.bad_request("the body of the request is empty")
        if content_type in YAML_TYPES:
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise e.bad_request(f"error converting YAML to JSON: {exc}") from exc
        if content_type in JSON_TYPES or content_type in ("", "application/octet-stream", "text/plain"):
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise e.bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc
        raise e.unsupported_media_type(content_type, ["application/json", "application/yaml"])

    def _dry_run(self, query: Query) -> bool:
        values = query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise e.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    def _write_options(self, request: web.Request) -> WriteOptions:
        query = request.query
        manager = (
            query.get("fieldManager") or request.headers.get("User-Agent", "").split("/", 1)[0] or "unknown"
        )
        validation = query.get("fieldValidation") or "Warn"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise e.bad_request(
                f'fieldValidation: Unsupported value: "{validation}": supported values: "Ignore", '
                '"Strict", "Warn"'
            )
        return WriteOptions(manager=manager[:128], dry_run=self._dry_run(query), field_validation=validation)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        raw = await request.read()
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise e.bad_request(f"invalid DeleteOptions: {exc}") from exc
            if isinstance(parsed, dict):
                options.update(parsed)
        if request.query.get("propagationPolicy"):
            options["propagationPolicy"] = request.query["propagationPolicy"]
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise e.bad_request(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: "Background", '
                '"Foreground", "Orphan"'
            )
        return options

    def _selectors(self, query: Query, resource: ResourceType) -> tuple[Any, FieldSelector]:
        labels = parse_labels(query.get("labelSelector"))
        fields = parse_fields(query.get("fieldSelector"))

        def unsupported(name: str) -> ApiError:
            if resource.custom:
                return e.bad_request(
                    f'"{name}" is not a known field selector: only "metadata.name", "metadata.namespace"'
                )
            return e.bad_request(f"field label not supported: {name}")

        fields.check_supported(resource.field_labels, unsupported)
        return labels, fields

    # --- rendering -----------------------------------------------------------------------------

    def _object(
        self,
        request: web.Request,
        target: Target,
        obj: dict[str, Any],
        code: int = 200,
        warnings: list[str] | None = None,
    ) -> web.Response:
        if obj.get("kind") == "Status":
            return _json(obj, code, warnings)
        if _wants_table(request):
            include = request.query.get("includeObject", "Metadata")
            version = target.version
            converted = in_version(obj, target.resource, version)
            body = tables.table(
                target.resource,
                version,
                [converted],
                include=include,
                resource_version=obj["metadata"].get("resourceVersion"),
            )
            return _json(body, code, warnings)
        return _json(in_version(obj, target.resource, target.version), code, warnings)

    def _result(self, request: web.Request, target: Target, result: Result) -> web.Response:
        return self._object(request, target, result.body, result.code, result.warnings)

    def _list(self, request: web.Request, target: Target) -> web.Response:
        query = request.query
        resource = target.resource
        labels, fields = self._selectors(query, resource)
        rv = query.get("resourceVersion")
        if rv not in (None, "", "0") and not str(rv).isdigit():
            raise e.bad_request(f'resourceVersion: Invalid value: "{rv}": must be a non-negative integer')
        items, list_rv, token, remaining = self.state.api.list_objects(
            resource,
            target.namespace,
            labels,
            fields,
            limit=_int_param(query, "limit") or 0,
            continue_token=query.get("continue"),
        )
        if _wants_table(request):
            objects = [in_version(s.obj, resource, target.version) for s in items]
            body = tables.table(
                resource,
                target.version,
                objects,
                include=query.get("includeObject", "Metadata"),
                resource_version=str(list_rv),
                continue_token=token,
            )
            return _json(body)
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if token:
            meta["continue"] = token
            meta["remainingItemCount"] = remaining
        head = dumps(
            {"kind": resource.list_kind, "apiVersion": resource.api_version(target.version), "metadata": meta}
        )
        api_version = resource.api_version(target.version)
        encoded = [
            s.json()
            if s.obj.get("apiVersion") == api_version
            else dumps(in_version(s.obj, resource, target.version))
            for s in items
        ]
        payload = head[:-1] + b',"items":[' + b",".join(encoded) + b"]}"
        return web.Response(body=payload, content_type="application/json")

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        resource = target.resource
        labels, fields = self._selectors(query, resource)
        rv_text = query.get("resourceVersion")
        send_initial = _true(query.get("sendInitialEvents"))
        since: int | None
        if rv_text in (None, "", "0") or send_initial:
            since = None
        elif rv_text.isdigit():
            since = int(rv_text)
        else:
            raise e.bad_request(
                f'resourceVersion: Invalid value: "{rv_text}": must be a non-negative integer'
            )
        timeout = _int_param(query, "timeoutSeconds")
        watch_request = WatchRequest(
            resource=resource,
            version=target.version,
            namespace=target.namespace,
            labels=labels,
            fields=fields,
            since=since,
            timeout=float(timeout) if timeout else DEFAULT_WATCH_TIMEOUT,
            bookmarks=_true(query.get("allowWatchBookmarks")),
            initial_events_end=send_initial,
        )
        render = default_render(resource, target.version)
        if _wants_table(request):
            include = query.get("includeObject", "Metadata")
            first = [True]

            def render_table(kind: str, stored: Stored) -> bytes:
                converted = in_version(stored.obj, resource, target.version)
                body = tables.table(
                    resource,
                    target.version,
                    [converted],
                    include=include,
                    resource_version=stored.obj["metadata"].get("resourceVersion"),
                    headers=first[0],
                )
                first[0] = False
                return dumps({"type": kind, "object": body}) + b"\n"

            render = render_table
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        lines = stream(
            self.state.store, watch_request, render, self.state.closing, self.state.bookmark_interval
        )
        try:
            async with contextlib.aclosing(lines):
                async for line in lines:
                    await response.write(line)
            await response.write_eof()
        except ConnectionResetError:
            log.debug("watch client went away: %s", request.path_qs)
        return response

    # --- pods/log and pods/exec ----------------------------------------------------------------

    def _container(self, pod: dict[str, Any], requested: str | None) -> str:
        spec = pod.get("spec") or {}
        name = pod["metadata"]["name"]
        containers = [c.get("name") for c in spec.get("containers") or []]
        init = [c.get("name") for c in spec.get("initContainers") or []]
        ephemeral = [c.get("name") for c in spec.get("ephemeralContainers") or []]
        if requested:
            if requested not in containers + init + ephemeral:
                raise e.bad_request(f"container {requested} is not valid for pod {name}")
            return requested
        if len(containers) == 1:
            return str(containers[0])
        message = (
            f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        )
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise e.bad_request(message)

    async def _log(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        assert target.namespace is not None
        query = request.query
        pod = self.state.api.get(target.resource, target.namespace, target.name)
        container = self._container(pod.obj, query.get("container"))
        if _true(query.get("previous")):
            raise e.bad_request(
                f'previous terminated container "{container}" in pod "{target.name}" not found'
            )
        key = (target.namespace, target.name, container)
        lines, position = self.state.logs.since(key, 0)
        since_seconds = _int_param(query, "sinceSeconds")
        if since_seconds is not None:
            cutoff = now().timestamp() - since_seconds
            lines = [line for line in lines if line.at.timestamp() >= cutoff]
        tail = _int_param(query, "tailLines")
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        stamps = _true(query.get("timestamps"))
        text = "".join(line.render(stamps) for line in lines).encode()
        limit = _int_param(query, "limitBytes")
        if limit is not None:
            text = text[:limit]
        if not _true(query.get("follow")):
            return web.Response(body=text, content_type="text/plain")
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await response.write(text)
            await self._follow(response, target, pod, key=key, position=position, stamps=stamps)
            await response.write_eof()
        except ConnectionResetError:
            log.debug("log follower went away: %s", request.path_qs)
        return response

    async def _follow(
        self,
        response: web.StreamResponse,
        target: Target,
        pod: Stored,
        *,
        key: tuple[str, str, str],
        position: int,
        stamps: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        loop_thread = threading.get_ident()
        changed = asyncio.Event()

        def wake() -> None:
            if threading.get_ident() == loop_thread:
                changed.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(changed.set)

        uid = pod.obj["metadata"].get("uid")
        self.state.logs.watch(key, wake)
        self.state.wakers.add(wake)
        try:
            while not self.state.closing.event.is_set():
                lines, position = self.state.logs.since(key, position)
                if lines:
                    await response.write("".join(line.render(stamps) for line in lines).encode())
                current = self.state.store.get(PODS, key[0], key[1])
                if current is None or current.obj["metadata"].get("uid") != uid:
                    return
                await changed.wait()
                changed.clear()
        finally:
            self.state.wakers.discard(wake)
            self.state.logs.unwatch(key, wake)

    async def _exec(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        assert target.namespace is not None
        query = request.query
        pod = self.state.api.get(target.resource, target.namespace, target.name)
        container = self._container(pod.obj, query.get("container"))
        argv = query.getall("command", [])
        if not argv:
            raise e.bad_request("you must specify at least 1 command")
        handler = self.state.execs.lookup(target.namespace, target.name, container)
        missing = (
            f'unable to exec in container "{container}" of pod "{target.namespace}/{target.name}": '
            "no exec handler is registered for it in the lab"
        )
        if exec_spdy.is_spdy_upgrade(request):
            if not exec_spdy.offers_v4(request):
                raise e.bad_request(f"unable to upgrade: the client does not offer {exec_spdy.PROTOCOL}")
            return await exec_spdy.serve(
                request,
                argv,
                want_stdin=_true(query.get("stdin")),
                want_stdout=_true(query.get("stdout")),
                want_stderr=_true(query.get("stderr")),
                tty=_true(query.get("tty")),
                handler=handler,
                missing=missing,
            )
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise e.bad_request("Upgrade request required")
        if not set(exec_ws.offered_protocols(request)) & set(exec_ws.PROTOCOLS):
            raise e.bad_request(
                f"unable to upgrade connection: none of the offered subprotocols are supported "
                f"(supported: {', '.join(exec_ws.PROTOCOLS)})"
            )
        return await exec_ws.serve(
            request,
            argv,
            want_stdin=_true(query.get("stdin")),
            tty=_true(query.get("tty")),
            handler=handler,
            missing=missing,
            sessions=self.state.sockets,
        )
