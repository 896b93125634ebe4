"""cilium-cli releases: the behaviours of the CLI a run does its operations as, one table per concern.

The harness performs cilium-cli's operations itself over the Kubernetes API (`operations`), so the
topology's `cluster.cilium_cli_version` says which release's behaviour it reproduces. On a k3d or pi
target that is the release installed there; the walkthrough used v0.15.4.
"""

from __future__ import annotations

import re

CliVersion = tuple[int, int, int]

WALKTHROUGH_CLI = "0.15.4"

# `cilium config set` deletes the agent pods; up to v0.18.6 it leaves the operator alone, from v0.18.7
# it deletes the operator pods too (FACTS.md, "CRD registration, config, logs"). The walkthrough's
# operator restart by hand exists because of the first behaviour.
CONFIG_SET_RESTARTS_OPERATOR_FROM: CliVersion = (0, 18, 7)

_PATTERN = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def cli_version(text: str) -> CliVersion:
    """`0.15.4` or `v0.18.7` -> (0, 15, 4); ValueError for anything else."""
    found = _PATTERN.fullmatch(text.strip())
    if found is None:
        raise ValueError(f"not a cilium-cli release: {text!r} (write it as 0.15.4)")
    major, minor, patch = (int(part) for part in found.groups())
    return major, minor, patch


def shown(version: CliVersion) -> str:
    return "v" + ".".join(str(part) for part in version)


def config_set_restarts_operator(text: str) -> bool:
    """Whether this release's `cilium config set` also deletes the operator pods."""
    return cli_version(text) >= CONFIG_SET_RESTARTS_OPERATOR_FROM
