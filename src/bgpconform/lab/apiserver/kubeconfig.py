"""The kubeconfig a run writes, so kubectl and the Python client reach the lab like any cluster."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from bgpconform.errors import LabError

FILE_NAME = "kubeconfig"


class Addressed:
    """Where a lab API server is reached, in-process or in a process of its own: its URL once
    serving, and the kubeconfig it writes into its run directory."""

    run_dir: Path
    _url: str | None

    @property
    def url(self) -> str:
        if self._url is None:
            raise LabError("the lab API server is not started")
        return self._url

    @property
    def kubeconfig_path(self) -> Path:
        return self.run_dir / FILE_NAME


def render(server_url: str, cluster_name: str, namespace: str = "default") -> str:
    """One cluster, one context; the lab serves plain HTTP on loopback and takes no credentials."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server_url}}],
        "users": [{"name": cluster_name, "user": {}}],
        "contexts": [
            {
                "name": cluster_name,
                "context": {"cluster": cluster_name, "user": cluster_name, "namespace": namespace},
            }
        ],
        "current-context": cluster_name,
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=False)


def write(path: Path, server_url: str, cluster_name: str) -> Path:
    """Write atomically with mode 0600, as kubectl expects of a kubeconfig."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(render(server_url, cluster_name))
    temporary.replace(path)
    return path
