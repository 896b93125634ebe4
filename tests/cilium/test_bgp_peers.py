"""`cilium bgp peers`: agent JSON per version, its parser, and cilium-cli's table as in the walkthrough."""

from __future__ import annotations

import json

import pytest

from bgpconform.bgp_states import SessionState
from bgpconform.cilium.bgp_peers import (
    BgpPeer,
    GracefulRestart,
    PeerFamily,
    PeerTimers,
    agent_json,
    cli_json,
    format_uptime,
    parse_agent_json,
    parse_cli_json,
    summary_table,
    tabwriter,
)

# The walkthrough's second `cilium bgp peers` (seed/000_25e445b7d91be53b.txt), trailing blanks removed:
# its copy lost the padding tabwriter leaves after the last column.
WALKTHROUGH_ESTABLISHED = "".join(
    line + "\n"
    for line in (
        "Node                 Local AS   Peer AS   Peer Address   Session State   "
        "Uptime     Family         Received   Advertised",
        "k3s-worker-node-01   64512      64512     192.168.1.1    established     "
        "1h33m42s   ipv4/unicast   1          2",
        "                                                                         "
        "           ipv6/unicast   0          0",
        "k3s-worker-node-02   64512      64512     192.168.1.1    established     "
        "1h33m37s   ipv4/unicast   1          2",
        "                                                                         "
        "           ipv6/unicast   0          0",
        "k3s-worker-node-03   64512      64512     192.168.1.1    established     "
        "1h33m47s   ipv4/unicast   1          2",
    )
)

IPV4 = PeerFamily("ipv4", "unicast", received=1, accepted=1, advertised=2)
IPV6 = PeerFamily("ipv6", "unicast")


def walkthrough_peers(state: str, uptimes: tuple[float, float, float]) -> dict[str, list[BgpPeer]]:
    families = {
        "k3s-worker-node-01": (IPV4, IPV6),
        "k3s-worker-node-02": (IPV4, IPV6),
        "k3s-worker-node-03": (IPV4,),
    }
    if state != "established":
        families = {node: tuple(PeerFamily(f.afi, f.safi) for f in fams) for node, fams in families.items()}
    return {
        node: [
            BgpPeer.from_facts(
                local_asn=64512,
                peer_asn=64512,
                peer_address="192.168.1.1",
                session_state=state,
                uptime_seconds=uptime,
                families=families[node],
                timers=PeerTimers(
                    connect_retry=120,
                    configured_hold=90,
                    configured_keepalive=30,
                    applied_hold=90 if state == "established" else 0,
                    applied_keepalive=30 if state == "established" else 0,
                ),
            )
        ]
        for node, uptime in zip(sorted(families), uptimes, strict=True)
    }


def stripped(text: str) -> str:
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


def test_established_table_is_the_walkthroughs() -> None:
    table = summary_table(walkthrough_peers("established", (5622, 5617, 5627)))

    assert stripped(table) == WALKTHROUGH_ESTABLISHED
    # Go's tabwriter pads the last column too: "2" in a column five wide.
    assert table.splitlines()[1].endswith("   1          2    ")
    assert table.splitlines()[0].endswith("Received   Advertised")


def test_active_table_prints_0s_uptime_and_narrows_that_column() -> None:
    # The walkthrough's first table shows a blank, 11-wide Uptime column for `active` sessions; real
    # cilium-cli prints `0s` (Duration(0).String()) and tabwriter sizes the column to "Uptime" + 3.
    table = summary_table(walkthrough_peers("active", (0, 0, 0)))

    expected = "".join(
        line + "\n"
        for line in (
            "Node                 Local AS   Peer AS   Peer Address   Session State   "
            "Uptime   Family         Received   Advertised",
            "k3s-worker-node-01   64512      64512     192.168.1.1    active          "
            "0s       ipv4/unicast   0          0",
            "                                                                         "
            "         ipv6/unicast   0          0",
            "k3s-worker-node-02   64512      64512     192.168.1.1    active          "
            "0s       ipv4/unicast   0          0",
            "                                                                         "
            "         ipv6/unicast   0          0",
            "k3s-worker-node-03   64512      64512     192.168.1.1    active          "
            "0s       ipv4/unicast   0          0",
        )
    )
    assert stripped(table) == expected


def test_nodes_are_sorted_and_only_a_nodes_first_peer_shows_its_name() -> None:
    def peer(address: str, asn: int = 65001) -> BgpPeer:
        return BgpPeer.from_facts(
            local_asn=asn,
            peer_asn=65000,
            peer_address=address,
            session_state="idle",
            uptime_seconds=None,
            families=[PeerFamily("ipv4", "unicast")],
        )

    table = summary_table(
        {"b-node": [peer("10.0.0.2"), peer("10.0.0.10")], "a-node": [peer("10.0.0.1")], "empty": []}
    )
    rows = [line.split() for line in table.splitlines()[1:]]

    assert [row[0] for row in rows] == ["a-node", "b-node", "65001"]
    # Peer addresses compare as strings in cilium-cli: "10.0.0.10" sorts before "10.0.0.2".
    assert [row[3] if row[0] == "b-node" else row[2] for row in rows[1:]] == ["10.0.0.10", "10.0.0.2"]


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (499_999_999, "0s"),
        (500_000_000, "1s"),
        (59_500_000_000, "1m0s"),
        (3600 * 10**9, "1h0m0s"),
        (5622 * 10**9 + 123, "1h33m42s"),
        (90061 * 10**9, "25h1m1s"),
    ],
)
def test_uptime_is_go_duration_rounded_to_seconds(ns: int, text: str) -> None:
    assert format_uptime(ns) == text


def test_1_13_agent_json_has_the_backported_fields_only() -> None:
    peer = walkthrough_peers("established", (5622, 5617, 5627))["k3s-worker-node-01"][0]

    assert json.loads(agent_json([peer])) == [
        {
            "families": [
                {"accepted": 1, "advertised": 2, "afi": "ipv4", "received": 1, "safi": "unicast"},
                {"afi": "ipv6", "safi": "unicast"},
            ],
            "local-asn": 64512,
            "peer-address": "192.168.1.1",
            "peer-asn": 64512,
            "session-state": "established",
            "uptime-nanoseconds": 5622 * 10**9,
        }
    ]
    assert agent_json([peer]).startswith('[\n  {\n    "families": [\n')
    assert agent_json([]) == "[]\n"


def test_1_14_agent_json_adds_port_timers_ttl_and_graceful_restart_in_field_order() -> None:
    peer = walkthrough_peers("established", (5622, 5617, 5627))["k3s-worker-node-01"][0]
    obj = json.loads(agent_json([peer], version="1.14"))[0]

    assert list(obj) == [
        "applied-hold-time-seconds",
        "applied-keep-alive-time-seconds",
        "configured-hold-time-seconds",
        "configured-keep-alive-time-seconds",
        "connect-retry-time-seconds",
        "ebgp-multihop-ttl",
        "families",
        "graceful-restart",
        "local-asn",
        "peer-address",
        "peer-asn",
        "peer-port",
        "session-state",
        "uptime-nanoseconds",
    ]
    assert obj["peer-port"] == 179
    assert obj["ebgp-multihop-ttl"] == 1
    assert obj["graceful-restart"] == {}
    assert obj["applied-hold-time-seconds"] == 90
    assert obj["connect-retry-time-seconds"] == 120
    assert "tcp-password-enabled" not in json.loads(agent_json([peer], version="1.15"))[0]


def test_a_session_that_is_not_up_has_no_uptime_and_no_applied_timers() -> None:
    peer = BgpPeer.from_facts(
        local_asn=64512,
        peer_asn=64512,
        peer_address="192.168.1.1",
        session_state="active",
        uptime_seconds=12.0,
        families=[PeerFamily("ipv4", "unicast")],
        timers=PeerTimers(connect_retry=120, configured_hold=90, configured_keepalive=30),
    )
    obj = json.loads(agent_json([peer], version="1.14"))[0]

    assert peer.uptime_ns is None
    assert peer.uptime == "0s"
    assert "uptime-nanoseconds" not in obj
    assert "applied-hold-time-seconds" not in obj
    assert obj["families"] == [{"afi": "ipv4", "safi": "unicast"}]
    no_families = BgpPeer.from_facts(
        local_asn=1, peer_asn=2, peer_address="10.0.0.1", session_state="idle", uptime_seconds=None
    )
    assert json.loads(agent_json([no_families]))[0]["families"] is None


def test_parsing_round_trips_every_version() -> None:
    peer = BgpPeer.from_facts(
        local_asn=65001,
        peer_asn=65000,
        peer_address="10.0.0.1",
        session_state=SessionState.ESTABLISHED,
        uptime_seconds=42.25,
        families=[IPV4, IPV6],
        peer_port=1790,
        ebgp_multihop_ttl=4,
        graceful_restart=GracefulRestart(enabled=True, restart_time_seconds=120),
        timers=PeerTimers(
            connect_retry=1, configured_hold=3, configured_keepalive=1, applied_hold=3, applied_keepalive=1
        ),
    )

    assert parse_agent_json(agent_json([peer], version="1.14")) == [peer]
    parsed_113 = parse_agent_json(agent_json([peer]))[0]
    assert parsed_113.peer_port is None
    assert parsed_113.timers == PeerTimers()
    assert (parsed_113.uptime_ns, parsed_113.families) == (42_250_000_000, (IPV4, IPV6))


def test_cli_json_is_keyed_by_node_and_parses_back() -> None:
    peers = walkthrough_peers("established", (5622, 5617, 5627))
    text = cli_json({**peers, "k3s-control-plane-01": []})

    assert text.startswith('{\n "k3s-control-plane-01": [],\n "k3s-worker-node-01": [\n  {\n')
    parsed = parse_cli_json(text)
    assert parsed["k3s-control-plane-01"] == []
    assert parsed["k3s-worker-node-03"][0].uptime == "1h33m47s"
    assert parse_cli_json('{"n1": null}') == {"n1": []}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"session-state": "up"}]', "unknown session-state 'up'"),
        ('[{"local-asn": "64512"}]', "'local-asn' must be an integer"),
        ('[{"families": {}}]', "'families' must be a list"),
        ('{"peers": []}', "expected a list of peers"),
    ],
)
def test_malformed_json_is_refused_with_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_agent_json(text)


def test_unknown_states_and_versions_are_refused() -> None:
    with pytest.raises(ValueError, match="'up' is not a valid SessionState"):
        BgpPeer.from_facts(
            local_asn=1, peer_asn=1, peer_address="10.0.0.1", session_state="up", uptime_seconds=None
        )
    with pytest.raises(ValueError, match=r"1\.13"):
        agent_json([], version="1.12")


def test_tabwriter_blocks_end_at_lines_without_tabs() -> None:
    text = "a\tbb\tc\n\nlonger\tx\t\n"
    assert tabwriter(text, minwidth=0, padding=1) == "a bb c\n\nlonger x \n"
