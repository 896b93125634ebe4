"""Version rules in Gherkin tags decide which scenarios a run holds a release to."""

from __future__ import annotations

from bgpconform.applicability import Applicability, applicability, is_rule_tag
from bgpconform.cilium.bgp_api import BgpApi


def test_untagged_scenarios_hold_on_every_release() -> None:
    assert applicability({"destructive"}, "1.13.4", BgpApi.V1) is None


def test_a_release_bound_selects_by_minor() -> None:
    before = {"cilium_before_1_16"}
    assert applicability(before, "1.15.5", BgpApi.V1) == Applicability(True, "Cilium before 1.16")
    assert applicability(before, "1.16.0", BgpApi.V2) == Applicability(False, "Cilium before 1.16")
    assert applicability({"cilium_from_1_16"}, "1.16.3", BgpApi.V1) == Applicability(
        True, "Cilium 1.16 and later"
    )


def test_an_api_tag_and_a_bound_must_both_hold() -> None:
    tags = {"cilium_from_1_17", "bgp_v2"}
    assert applicability(tags, "1.17.5", BgpApi.V2) == Applicability(True, "Cilium 1.17 and later, on BGPv2")
    assert applicability(tags, "1.17.5", BgpApi.V1) == Applicability(False, "Cilium 1.17 and later, on BGPv2")
    assert applicability(tags, "1.16.3", BgpApi.V2) == Applicability(False, "Cilium 1.17 and later, on BGPv2")


def test_rule_tags_are_recognised() -> None:
    assert is_rule_tag("cilium_from_1_19")
    assert is_rule_tag("bgp_v1")
    assert not is_rule_tag("destructive")


def test_a_cilium_cli_bound_selects_by_release() -> None:
    """FACTS.md: `cilium config set` leaves the operator alone up to v0.18.6 and restarts it from v0.18.7."""
    before, since = {"cilium_cli_before_0_18_7"}, {"cilium_cli_from_0_18_7"}
    assert applicability(before, "1.18.2", BgpApi.V2, "0.18.6") == Applicability(
        True, "cilium-cli before v0.18.7"
    )
    assert applicability(before, "1.18.2", BgpApi.V2, "0.18.7") == Applicability(
        False, "cilium-cli before v0.18.7"
    )
    assert applicability(since, "1.13.4", BgpApi.V1, "0.19.0") == Applicability(
        True, "cilium-cli v0.18.7 and later"
    )
    assert applicability(since, "1.13.4", BgpApi.V1) == Applicability(False, "cilium-cli v0.18.7 and later")
    assert is_rule_tag("cilium_cli_from_0_18_7")


def test_an_upgrade_scenario_needs_a_release_to_upgrade_to() -> None:
    tags = {"cilium_upgrade", "cilium_from_1_14"}
    assert is_rule_tag("cilium_upgrade")
    assert applicability(tags, "1.17.5", BgpApi.V2, upgrade_to="1.19.1") == Applicability(
        True, "Cilium 1.14 and later, an upgrade to Cilium 1.19.1"
    )
    assert applicability(tags, "1.17.5", BgpApi.V2) == Applicability(
        False, "Cilium 1.14 and later, a release to upgrade to (cluster.upgrade_to)"
    )
    assert applicability(tags, "1.13.4", BgpApi.V1, upgrade_to="1.14.3") == Applicability(
        False, "Cilium 1.14 and later, an upgrade to Cilium 1.14.3"
    )


def test_the_scale_check_runs_only_where_the_topology_has_a_scale_section() -> None:
    assert is_rule_tag("scale")
    assert applicability({"scale"}, "1.13.4", BgpApi.V1, scale=500) == Applicability(
        True, "a scale section (500 services)"
    )
    assert applicability({"scale"}, "1.13.4", BgpApi.V1) == Applicability(
        False, "a scale section in the topology"
    )
