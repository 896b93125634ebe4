"""The commands the adapter writes for each RouterOS version, checked against the walkthrough and FACTS.md."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from bgpconform.errors import HarnessError
from bgpconform.routers.port import BgpPeer
from bgpconform.routers.routeros.commands import Change, connection_fields, plan_peers
from bgpconform.routers.routeros.dialect import Dialect, RouterOsVersion
from bgpconform.routers.routeros.durations import format_duration, parse_duration

PEER = BgpPeer("PEER_TO_K3S_WN_1", IPv4Address("192.168.1.201"), remote_asn=64512, local_asn=64512)
# The walkthrough's command on RouterOS 7.8, word for word.
WALKTHROUGH_ADD = (
    "add address-families=ip as=64512 disabled=no local.role=ibgp name=PEER_TO_K3S_WN_1 "
    "output.default-originate=always remote.address=192.168.1.201 routing-table=main"
)


def test_on_7_8_the_connection_is_the_walkthroughs_plus_the_harness_marks() -> None:
    fields = connection_fields(PEER, Dialect.of("7.8"))
    walkthrough = dict(part.split("=", 1) for part in WALKTHROUGH_ADD.split()[1:])
    assert {key: fields[key] for key in walkthrough} == walkthrough
    assert set(fields) - set(walkthrough) == {
        "comment",
        "hold-time",
        "keepalive-time",
        "output.keep-sent-attributes",
        "remote.as",
    }
    assert fields["comment"] == "bgpconform"
    assert fields["output.keep-sent-attributes"] == "yes"  # else advertisements/print shows nothing


@pytest.mark.parametrize(
    ("version", "families", "absent"),
    [
        ("7.8", "address-families", "afi"),
        ("7.18", "address-families", "afi"),
        ("7.19", "afi", "address-families"),
    ],
)
def test_the_address_family_field_follows_the_version(version: str, families: str, absent: str) -> None:
    fields = connection_fields(PEER, Dialect.of(version))
    assert fields[families] == "ip"
    assert absent not in fields
    assert "instance" not in fields
    assert fields["routing-table"] == "main"


def test_from_7_20_an_instance_comes_first_and_every_connection_names_it() -> None:
    peers = [PEER, BgpPeer("PEER_TO_K3S_WN_2", IPv4Address("192.168.1.202"), 64512, 64512)]
    plan = plan_peers(peers, Dialect.of("7.20"), router_id="192.168.1.1", multipath=16)
    assert [change.command for change in plan] == [
        "/routing/bgp/instance/add",
        "/routing/bgp/connection/add",
        "/routing/bgp/connection/add",
    ]
    instance = plan[0].fields
    assert (instance["name"], instance["as"], instance["router-id"]) == ("bgpconform", "64512", "192.168.1.1")
    assert "multipath" not in instance  # 7.20 has no BGP multipath
    for change in plan[1:]:
        assert change.fields["instance"] == "bgpconform"
        assert change.fields["afi"] == "ip"
        assert "routing-table" not in change.fields


def test_multipath_is_set_on_the_instance_only_from_7_22() -> None:
    plan = plan_peers([PEER], Dialect.of("7.22"), router_id="192.168.1.1", multipath=16)
    assert plan[0].fields["multipath"] == "16"
    without = plan_peers([PEER], Dialect.of("7.22"), router_id="192.168.1.1", multipath=None)
    assert "multipath" not in without[0].fields


def test_before_7_20_the_plan_is_only_connections() -> None:
    plan = plan_peers([PEER], Dialect.of("7.8"), router_id="192.168.1.1", multipath=None)
    assert [change.cli() for change in plan] == [
        "/routing/bgp/connection/add address-families=ip as=64512 comment=bgpconform disabled=no "
        "hold-time=9s keepalive-time=3s local.role=ibgp name=PEER_TO_K3S_WN_1 "
        "output.default-originate=always output.keep-sent-attributes=yes remote.address=192.168.1.201 "
        "remote.as=64512 routing-table=main"
    ]


def test_an_ebgp_peer_gets_the_ebgp_role_and_its_own_remote_as() -> None:
    peer = BgpPeer(
        "edge-1", IPv4Address("10.0.0.2"), remote_asn=65010, local_asn=65000, default_originate=False
    )
    fields = connection_fields(peer, Dialect.of("7.8"))
    assert (fields["local.role"], fields["as"], fields["remote.as"]) == ("ebgp", "65000", "65010")
    assert fields["output.default-originate"] == "never"


def test_cli_text_quotes_values_a_terminal_would_split() -> None:
    change = Change("/routing/bgp/connection", "set", {".id": "*1", "comment": 'a "b" c'})
    assert change.cli() == '/routing/bgp/connection/set .id=*1 comment="a \\"b\\" c"'
    assert change.words() == ["=.id=*1", '=comment=a "b" c']


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("7.8 (stable)", (7, 8, 0)), ("7.20.1", (7, 20, 1)), ("7.19rc2 (testing)", (7, 19, 0))],
)
def test_versions_are_read_as_routeros_prints_them(text: str, parsed: tuple[int, int, int]) -> None:
    version = RouterOsVersion.parse(text)
    assert version.key == parsed
    assert str(version) == text


def test_version_order_is_numeric_not_textual() -> None:
    assert RouterOsVersion.parse("7.8") < RouterOsVersion.parse("7.19") < RouterOsVersion.parse("7.20")


def test_a_version_that_is_not_one_says_what_was_expected() -> None:
    with pytest.raises(HarnessError, match=r"expected e.g. '7.8 \(stable\)'"):
        RouterOsVersion.parse("stable")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h33m44s560ms", 5624.56), ("1m30s", 90.0), ("3s", 3.0), ("90", 90.0), ("1w2d", 777600.0), ("", None)],
)
def test_durations_read_like_routeros_prints_them(text: str, seconds: float | None) -> None:
    assert (
        parse_duration(text) == pytest.approx(seconds)
        if seconds is not None
        else parse_duration(text) is None
    )


def test_durations_print_like_routeros() -> None:
    assert format_duration(5624.56) == "1h33m44s560ms"
    assert format_duration(90) == "1m30s"
    assert format_duration(0) == "0s"
    assert parse_duration("1m30x") is None
