"""Watch through the Python client's `Watch().stream`: order, resumption, 410, bookmarks."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from bgpconform.lab.apiserver.server import ApiServer
from tests.apiserver.conftest import (
    CoreApi,
    CustomApi,
    ExtensionsApi,
    Watch,
    fixture,
    new_client_from_config,
    pod_body,
)


def _events(stream: Any, count: int) -> list[dict[str, Any]]:
    events = []
    for event in stream:
        events.append(event)
        if len(events) == count:
            break
    return events


def test_events_arrive_in_resource_version_order(core: CoreApi) -> None:
    start = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", pod_body("w", app="w"))
    core.patch_namespaced_pod("w", "default", {"metadata": {"labels": {"step": "2"}}})
    core.delete_namespaced_pod("w", "default")
    watcher = Watch()
    events = _events(
        watcher.stream(core.list_namespaced_pod, "default", resource_version=start, timeout_seconds=5), 3
    )
    watcher.stop()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3
    assert events[1]["object"].metadata.labels == {"app": "w", "step": "2"}


def test_live_events_follow_the_initial_state(core: CoreApi) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    watcher = Watch()
    stream = watcher.stream(core.list_namespaced_config_map, "default", timeout_seconds=5)
    first = next(stream)
    assert (first["type"], first["object"].metadata.name) == ("ADDED", "before")
    core.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
    second = next(stream)
    assert (second["type"], second["object"].metadata.name) == ("ADDED", "after")
    core.delete_namespaced_config_map("before", "default")
    third = next(stream)
    assert (third["type"], third["object"].metadata.name) == ("DELETED", "before")
    watcher.stop()


def test_selector_transitions_become_added_and_deleted(core: CoreApi) -> None:
    start = core.list_namespaced_pod("default").metadata.resource_version
    core.create_namespaced_pod("default", pod_body("sel"))
    core.patch_namespaced_pod("sel", "default", {"metadata": {"labels": {"app": "web"}}})
    core.patch_namespaced_pod("sel", "default", {"metadata": {"labels": {"tier": "x"}}})
    core.patch_namespaced_pod("sel", "default", {"metadata": {"labels": {"app": None}}})
    watcher = Watch()
    stream = watcher.stream(
        core.list_namespaced_pod,
        "default",
        label_selector="app=web",
        resource_version=start,
        timeout_seconds=5,
    )
    events = _events(stream, 3)
    watcher.stop()
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[2]["object"].metadata.labels == {"tier": "x"}


def test_too_old_resource_version_is_410_gone(tmp_path: Path) -> None:
    with ApiServer(tmp_path, history=3) as server:
        api = new_client_from_config(config_file=str(server.kubeconfig_path))
        core: CoreApi = client.CoreV1Api(api)
        start = core.list_namespaced_config_map("default").metadata.resource_version
        for index in range(5):
            core.create_namespaced_config_map("default", {"metadata": {"name": f"c{index}"}})
        with pytest.raises(client.ApiException) as raised:
            for _ in Watch().stream(
                core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=5
            ):
                pass
        assert raised.value.status == 410
        assert str(raised.value.reason).startswith(f"Expired: too old resource version: {start} (")
        recent = core.list_namespaced_config_map("default").metadata.resource_version
        core.create_namespaced_config_map("default", {"metadata": {"name": "fresh"}})
        events = _events(
            Watch().stream(
                core.list_namespaced_config_map, "default", resource_version=recent, timeout_seconds=5
            ),
            1,
        )
        assert events[0]["object"].metadata.name == "fresh"
        api.close()


def test_bookmarks_carry_the_current_resource_version(server: ApiServer, core: CoreApi) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    latest = int(core.list_namespaced_config_map("default").metadata.resource_version)
    events = _events(
        Watch().stream(
            core.list_namespaced_config_map, "default", allow_watch_bookmarks=True, timeout_seconds=3
        ),
        2,
    )
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    bookmark = events[1]["raw_object"]
    assert bookmark["kind"] == "ConfigMap"
    assert int(bookmark["metadata"]["resourceVersion"]) >= latest


def test_send_initial_events_ends_with_annotated_bookmark(server: ApiServer) -> None:
    url = (
        f"{server.url}/api/v1/namespaces?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    )
    with urllib.request.urlopen(url, timeout=10) as response:
        lines = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    types = [line["type"] for line in lines]
    assert types[:4] == ["ADDED"] * 4
    assert types[4] == "BOOKMARK"
    assert lines[4]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_deleting_a_crd_ends_its_watches(
    cilium_crds: None, custom: CustomApi, extensions: ExtensionsApi
) -> None:
    custom.create_cluster_custom_object(
        "cilium.io", "v2alpha1", "ciliumloadbalancerippools", fixture("cilium-ippool.yaml")
    )
    started = time.monotonic()
    watcher = Watch()
    stream = watcher.stream(
        custom.list_cluster_custom_object,
        "cilium.io",
        "v2alpha1",
        "ciliumloadbalancerippools",
        timeout_seconds=20,
    )
    first = next(stream)
    assert first["type"] == "ADDED"
    extensions.delete_custom_resource_definition("ciliumloadbalancerippools.cilium.io")
    rest = list(stream)
    assert [e["type"] for e in rest] == ["DELETED"]
    assert rest[0]["object"]["metadata"]["name"] == "lb-pool"
    assert time.monotonic() - started < 10, "the watch should end when the CRD goes, not at its timeout"
