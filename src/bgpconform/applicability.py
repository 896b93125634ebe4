"""Which scenarios a Cilium release and BGP API promise: the features' version tags, read once.

A scenario whose promise differs by release says so in Gherkin with tags, and the run keeps only the
ones that hold for the topology's `cluster.cilium_version` and BGP API (`Topology.bgp_api`):
`@cilium_from_1_16` (1.16 and later), `@cilium_before_1_16` (up to 1.15), `@bgp_v1`, `@bgp_v2`, and for
what the cilium-cli release decides (`cluster.cilium_cli_version`), `@cilium_cli_from_0_18_7` and
`@cilium_cli_before_0_18_7`, `@cilium_upgrade` for scenarios that need a release to upgrade to
(`cluster.upgrade_to`), and `@scale` for the scale check, which runs where the topology has a `scale`
section (it creates hundreds of services, so nobody gets it by surprise). The report lists, per
tagged scenario, whether it applied and why not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bgpconform.cilium.bgp_api import BgpApi
from bgpconform.cilium.cli_versions import WALKTHROUGH_CLI, cli_version
from bgpconform.cilium.cli_versions import shown as cli_shown
from bgpconform.cilium.versions import supported_minor

_VERSION_TAG = re.compile(r"cilium_(before|from)_(\d+)_(\d+)")
_CLI_TAG = re.compile(r"cilium_cli_(before|from)_(\d+)_(\d+)_(\d+)")
_API_TAGS = {"bgp_v1": BgpApi.V1, "bgp_v2": BgpApi.V2}
UPGRADE_TAG = "cilium_upgrade"
SCALE_TAG = "scale"


@dataclass(frozen=True)
class Applicability:
    """A tagged scenario's verdict for this run: whether it runs, and the rule that decided it."""

    applies: bool
    rule: str  # e.g. "Cilium 1.16 and later, on BGPv2"


def is_rule_tag(tag: str) -> bool:
    return (
        tag in _API_TAGS
        or tag in (UPGRADE_TAG, SCALE_TAG)
        or any(p.fullmatch(tag) is not None for p in (_VERSION_TAG, _CLI_TAG))
    )


def _bound(
    direction: str, have: tuple[int, ...], bound: tuple[int, ...], subject: str, shown: str
) -> tuple[bool, str]:
    """A `from`/`before` tag's verdict on the release in use and its words, e.g. "Cilium 1.16 and later"."""
    if direction == "from":
        return have >= bound, f"{subject} {shown} and later"
    return have < bound, f"{subject} before {shown}"


def applicability(
    tags: Iterable[str],
    cilium_version: str,
    api: BgpApi,
    cilium_cli: str = WALKTHROUGH_CLI,
    upgrade_to: str | None = None,
    *,
    scale: int | None = None,
) -> Applicability | None:
    """None for a scenario without rule tags (it holds on every release); else whether it applies."""
    minor = supported_minor(cilium_version)
    cli = cli_version(cilium_cli)
    applies = True
    rule: list[str] = []
    for tag in sorted(
        set(tags), key=lambda t: (t in _API_TAGS, t in (UPGRADE_TAG, SCALE_TAG), t)
    ):  # releases first
        found_cli = _CLI_TAG.fullmatch(tag)
        found = _VERSION_TAG.fullmatch(tag)
        if found_cli is not None:
            release = (int(found_cli.group(2)), int(found_cli.group(3)), int(found_cli.group(4)))
            holds, said = _bound(found_cli.group(1), cli, release, "cilium-cli", cli_shown(release))
        elif found is not None:
            minor_bound = (int(found.group(2)), int(found.group(3)))
            shown = f"{minor_bound[0]}.{minor_bound[1]}"
            holds, said = _bound(found.group(1), minor, minor_bound, "Cilium", shown)
        elif tag == UPGRADE_TAG:
            holds = upgrade_to is not None
            said = (
                f"an upgrade to Cilium {upgrade_to}"
                if holds
                else "a release to upgrade to (cluster.upgrade_to)"
            )
        elif tag == SCALE_TAG:
            holds = scale is not None
            said = f"a scale section ({scale} services)" if holds else "a scale section in the topology"
        elif tag in _API_TAGS:
            holds = api is _API_TAGS[tag]
            said = "on BGPv2" if _API_TAGS[tag] is BgpApi.V2 else "on the v1 peering policy"
        else:
            continue
        applies &= holds
        rule.append(said)
    if not rule:
        return None
    return Applicability(applies, ", ".join(rule))
