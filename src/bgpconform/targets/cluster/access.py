"""Which kubeconfig and context a real-cluster run uses, decided once and named in every message.

Precedence: the command line (`--kubeconfig`, `--kube-context`), then the topology (`cluster.kubeconfig`,
`cluster.context`), then kubectl's own defaults (`$KUBECONFIG`, `~/.kube/config`, the current context).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bgpconform.errors import ConfigError
from bgpconform.topology import Topology


@dataclass(frozen=True)
class KubeAccess:
    kubeconfig: Path
    context: str
    server: str
    source: str  # where the context came from, for messages: "--kube-context", "cluster.context", ...

    def __str__(self) -> str:
        return f"context {self.context} ({self.server}) in {self.kubeconfig}"


def _default_kubeconfig(environ: Mapping[str, str]) -> tuple[Path, str]:
    listed = [part for part in environ.get("KUBECONFIG", "").split(os.pathsep) if part]
    if listed:
        return Path(listed[0]).expanduser(), "$KUBECONFIG"
    return Path("~/.kube/config").expanduser(), "~/.kube/config"


def _read(path: Path, named_by: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            f"{named_by}: kubeconfig {path} does not exist; fix: point {named_by} at the cluster's "
            "kubeconfig (k3s writes /etc/rancher/k3s/k3s.yaml on the server)"
        )
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{named_by}: kubeconfig {path} cannot be read: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{named_by}: kubeconfig {path} is not a kubeconfig (no mapping at the top)")
    return loaded


def resolve_kube_access(
    topology: Topology,
    kubeconfig: Path | None = None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> KubeAccess:
    env = os.environ if environ is None else environ
    declared = topology.cluster.kubeconfig_path(topology.source)
    if kubeconfig is not None:
        path, named_by = kubeconfig, "--kubeconfig"
    elif declared is not None:
        path, named_by = declared, f"{topology.source}: cluster.kubeconfig"
    else:
        path, named_by = _default_kubeconfig(env)
    config = _read(path, named_by)
    contexts = {c.get("name"): c.get("context") or {} for c in config.get("contexts") or []}
    if context is not None:
        chosen, source = context, "--kube-context"
    elif topology.cluster.context is not None:
        chosen, source = topology.cluster.context, f"{topology.source}: cluster.context"
    else:
        chosen, source = str(config.get("current-context") or ""), f"current-context of {path}"
    if chosen not in contexts:
        known = ", ".join(sorted(str(name) for name in contexts)) or "none"
        raise ConfigError(
            f"{source}: context {chosen!r} is not in kubeconfig {path} (contexts: {known}); "
            "fix: use one of those names"
        )
    cluster_name = contexts[chosen].get("cluster")
    clusters = {c.get("name"): c.get("cluster") or {} for c in config.get("clusters") or []}
    server = str(clusters.get(cluster_name, {}).get("server", "?"))
    return KubeAccess(path.resolve(), str(chosen), server, source)
