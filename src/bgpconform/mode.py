"""Verify and install: how much of a cluster the harness may change.

Verify (the default on real clusters) never touches the CNI or the router's peering: it checks what
runs and adds and removes only its own test objects. Install replays the whole walkthrough from a
cluster without CNI, uninstalling Cilium first, so it needs two proofs that the cluster is the one the
user meant to wipe: `--allow-destructive`, and the kubeconfig file and context in use being the ones the
topology names (a context name alone proves little: every k3s kubeconfig calls its context `default`).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from bgpconform.errors import ConfigError
from bgpconform.topology import Topology

DESTRUCTIVE_MARK = "destructive"  # the feature tag of scenarios that change the CNI or the peering


class Mode(StrEnum):
    VERIFY = "verify"
    INSTALL = "install"


def check_install_allowed(
    topology: Topology, kubeconfig: Path, context: str, *, allow_destructive: bool
) -> None:
    """Refuse install mode unless every proof holds; each refusal is one line with its fix."""
    if not allow_destructive:
        raise ConfigError(
            "--mode=install uninstalls Cilium and replays the walkthrough on the cluster; "
            "fix: add --allow-destructive if that is what you want, or run --mode=verify"
        )
    declared_file = topology.cluster.kubeconfig_path(topology.source)
    if declared_file is None:
        raise ConfigError(
            f"{topology.source}: cluster.kubeconfig is not set, and --mode=install runs only on the "
            f"kubeconfig and context the topology names; fix: add `kubeconfig: {kubeconfig}` under cluster "
            "if that is the cluster to reinstall"
        )
    if declared_file.resolve() != kubeconfig.resolve():
        raise ConfigError(
            f"--mode=install: the kubeconfig in use is {kubeconfig} but {topology.source} declares "
            f"cluster.kubeconfig {declared_file}; fix: drop --kubeconfig or correct the topology"
        )
    declared = topology.cluster.context
    if declared is None:
        raise ConfigError(
            f"{topology.source}: cluster.context is not set, and --mode=install runs only on the context "
            f"the topology names; fix: add `context: {context}` under cluster if {context} is the "
            "cluster to reinstall"
        )
    if declared != context:
        raise ConfigError(
            f"--mode=install: the kube context in use is {context!r} but {topology.source} declares "
            f"cluster.context {declared!r}; fix: run with --kube-context={declared} or correct the topology"
        )
