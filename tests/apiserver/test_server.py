"""The server's life: start, kubeconfig, stop with open streams, dumps for evidence."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from bgpconform.errors import LabError
from bgpconform.lab.apiserver.server import ApiServer
from tests.apiserver.conftest import CoreApi, Watch, new_client_from_config, pod_body


def test_kubeconfig_names_the_cluster_and_reaches_the_server(tmp_path: Path) -> None:
    server = ApiServer(tmp_path, cluster_name="k3s-rpi")
    with pytest.raises(LabError):
        _ = server.url
    server.start()
    try:
        kubeconfig = yaml.safe_load(server.kubeconfig_path.read_text())
        assert server.kubeconfig_path == tmp_path / "kubeconfig"
        assert kubeconfig["current-context"] == "k3s-rpi"
        assert kubeconfig["clusters"] == [{"name": "k3s-rpi", "cluster": {"server": server.url}}]
        assert server.url.startswith("http://127.0.0.1:")
        assert server.kubeconfig_path.stat().st_mode & 0o777 == 0o600
        api = new_client_from_config(config_file=str(server.kubeconfig_path))
        core: CoreApi = client.CoreV1Api(api)
        names = [n.metadata.name for n in core.list_namespace().items]
        assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
        api.close()
    finally:
        server.stop()
        server.stop()
    assert not server.running


def test_stop_ends_open_watches_and_log_streams(tmp_path: Path) -> None:
    server = ApiServer(tmp_path)
    server.start()
    api = new_client_from_config(config_file=str(server.kubeconfig_path))
    core: CoreApi = client.CoreV1Api(api)
    core.create_namespaced_pod("default", pod_body("p"))
    outcomes: dict[str, Any] = {}

    def consume(name: str, source: Any) -> None:
        try:
            outcomes[name] = list(source)
        except Exception as exc:  # the connection may also be cut; either way the consumer is released
            outcomes[name] = exc

    server.logs.append("default", "p", "app", "hello")
    watching = Watch().stream(core.list_namespaced_pod, "default", timeout_seconds=60)
    following = Watch().stream(core.read_namespaced_pod_log, name="p", namespace="default", follow=True)
    assert next(watching)["type"] == "ADDED"  # both streams are open and waiting from here on
    assert next(following) == "hello"
    threads = [
        threading.Thread(target=consume, args=("watch", watching)),
        threading.Thread(target=consume, args=("logs", following)),
    ]
    for thread in threads:
        thread.start()
    server.stop()
    for thread in threads:
        thread.join(timeout=20)
        assert not thread.is_alive(), "stop() must release clients blocked on a stream"
    assert set(outcomes) == {"watch", "logs"}
    api.close()


def test_dump_writes_every_object_and_redacts_secrets(server: ApiServer, core: CoreApi) -> None:
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "router"}, "stringData": {"password": "s3cret"}}
    )
    core.create_namespaced_pod("default", pod_body("simple-pod"))
    target = server.run_dir / "report" / "store.yaml"
    server.dump(target)
    text = target.read_text()
    assert "s3cret" not in text
    assert "czNjcmV0" not in text  # base64 of the password
    documents = list(yaml.safe_load_all(text))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {
        ("Secret", "router"),
        ("Pod", "simple-pod"),
        ("Namespace", "kube-system"),
        ("Service", "kubernetes"),
    } <= kinds
    secret = next(d for d in documents if d["kind"] == "Secret")
    assert secret["data"] == {"password": "<redacted>"}
    assert all("managedFields" not in d["metadata"] for d in documents)
