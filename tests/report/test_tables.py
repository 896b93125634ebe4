"""Text tables as steps record them, split into cells the way a reader lines them up."""

from __future__ import annotations

import pytest

from bgpconform.report.tables import parse_text_table
from tests.report.conftest import (
    BGP_PEERS_ESTABLISHED,
    BGP_PEERS_HEADER,
    NODES_NOT_READY,
    PODS,
    ROUTER_DUMP,
    ROUTER_SESSIONS,
)


def test_kubectl_get_nodes() -> None:
    parsed = parse_text_table(NODES_NOT_READY)
    assert parsed is not None
    header, rows = parsed
    assert header == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert rows[0] == ["k3s-control-plane", "NotReady", "control-plane,master", "41s", "v1.30.6+k3s1"]
    assert [row[0] for row in rows] == [
        "k3s-control-plane",
        "k3s-worker-node-01",
        "k3s-worker-node-02",
        "k3s-worker-node-03",
    ]
    assert all(len(row) == 5 for row in rows)


def test_an_empty_cell_in_the_middle_of_a_row_stays_empty() -> None:
    parsed = parse_text_table(PODS)
    assert parsed is not None
    header, rows = parsed
    assert header == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "IP", "NODE"]
    assert rows[-1] == [
        "kube-system",
        "local-path-provisioner-6795b5f9d8-n7x9c",
        "1/1",
        "Running",
        "0",
        "",
        "k3s-control-plane",
    ]


def test_cilium_bgp_peers_with_family_continuation_lines() -> None:
    parsed = parse_text_table(BGP_PEERS_ESTABLISHED)
    assert parsed is not None
    header, rows = parsed
    assert header == BGP_PEERS_HEADER  # titles with a single space inside stay one column
    assert len(rows) == 6
    assert rows[0] == [
        "k3s-worker-node-01",
        "64512",
        "64501",
        "10.0.1.1",
        "established",
        "5m12s",
        "ipv4/unicast",
        "1",
        "2",
    ]
    assert rows[1] == ["", "", "", "", "", "", "ipv6/unicast", "0", "0"]  # padding at the end is dropped


def test_router_session_list() -> None:
    parsed = parse_text_table(ROUTER_SESSIONS)
    assert parsed is not None
    header, rows = parsed
    assert header == ["NAME", "REMOTE-ADDRESS", "REMOTE-AS", "STATE", "UPTIME", "RECEIVED", "ADVERTISED"]
    assert rows[2] == ["k3s-worker-node-03", "10.0.1.13", "64512", "established", "5m9s", "1", "1"]


def test_surrounding_blank_lines_are_ignored() -> None:
    parsed = parse_text_table("\n\n" + ROUTER_SESSIONS + "\n\n")
    assert parsed is not None
    assert len(parsed[1]) == 3


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param("NAME   STATUS   AGE", id="header only"),
        pytest.param("No resources found in default namespace.", id="one line"),
        pytest.param("nginx EXTERNAL-IP 10.0.10.1\nsecond line of free text", id="no two-space header"),
        pytest.param(ROUTER_DUMP, id="router dump with blank lines"),
        pytest.param("NAME\tSTATUS\nnode-1\tReady", id="tab separated"),
        pytest.param("NAME   STATUS\nk3s-worker-node-01 Ready", id="row runs across a column start"),
    ],
)
def test_text_that_is_not_a_table(body: str) -> None:
    assert parse_text_table(body) is None
