"""Fixtures: a fresh API server per test, clients from its kubeconfig, the walkthrough's CRDs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, dynamic, watch

from bgpconform.lab.apiserver.server import ApiServer

FIXTURES = Path(__file__).parent / "fixtures"

# The client's generated types make every field Optional and every request body a model class. The
# tests send the plain dicts real callers send (the client accepts them) and read fields a real
# server always fills, so they hold the API objects untyped rather than assert on every Optional.
ApiClient = Any
CoreApi = Any
AppsApi = Any
ExtensionsApi = Any
CustomApi = Any
# Untyped entry points of the client, held as Any so that strict mypy accepts calls to them.
Watch: Any = watch.Watch
new_client_from_config: Any = config.new_client_from_config
# kubectl 1.32 as the issue asks; the gcloud dispatcher on PATH would pick 1.27 for a v1.27 server.
KUBECTL_CANDIDATES = ("/usr/lib/google-cloud-sdk/bin/kubectl.1.32", "kubectl")


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((FIXTURES / name).read_text())
    return loaded


@pytest.fixture
def api_client(server: ApiServer) -> Iterator[ApiClient]:
    api = new_client_from_config(config_file=str(server.kubeconfig_path))
    yield api
    api.close()


@pytest.fixture
def core(api_client: ApiClient) -> CoreApi:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: ApiClient) -> AppsApi:
    return client.AppsV1Api(api_client)


@pytest.fixture
def extensions(api_client: ApiClient) -> ExtensionsApi:
    return client.ApiextensionsV1Api(api_client)


@pytest.fixture
def custom(api_client: ApiClient) -> CustomApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def cilium_crds(extensions: ExtensionsApi) -> None:
    """The walkthrough's two Cilium CRDs, created as the emulated operator will create them."""
    for name in ("ciliumloadbalancerippools.yaml", "ciliumbgppeeringpolicies.yaml"):
        extensions.create_custom_resource_definition(fixture(name))


def status_of(exc: client.ApiException) -> dict[str, Any]:
    """The Status body of an error answer."""
    body: dict[str, Any] = json.loads(exc.body or "{}")
    return body


def pod_body(name: str, containers: tuple[str, ...] = ("app",), **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {"containers": [{"name": c, "image": "nginx:1.25"} for c in containers]},
    }


def dynamic_client(api_client: ApiClient) -> Any:
    """The dynamic client (an untyped module), as the harness's generic code uses it."""
    make: Any = dynamic.DynamicClient
    return make(api_client)


def find_kubectl() -> str | None:
    """`BGPCONFORM_KUBECTL` if set, else the first candidate installed."""
    override = os.environ.get("BGPCONFORM_KUBECTL")
    for candidate in (override,) if override else KUBECTL_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


def kubectl_runner(binary: str, server: ApiServer, home: Path) -> Kubectl:
    """A kubectl invocation against `server`, with its own HOME and discovery cache."""

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(server.kubeconfig_path), "HOME": str(home)}
        argv = [binary, "--cache-dir", str(home / "kube-cache"), *args]
        result = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def kubectl(server: ApiServer, tmp_path: Path) -> Kubectl:
    """Run kubectl against the server; skips the test when no kubectl is installed."""
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (looked for: " + ", ".join(KUBECTL_CANDIDATES) + ")")
    return kubectl_runner(binary, server, tmp_path)
