"""The outside client sits north of the router and reaches the cluster only through it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bgpconform.errors import CommandError
from bgpconform.lab.lab import Lab
from bgpconform.lab.netns import ns_argv
from bgpconform.lab.supervisor import Daemon
from bgpconform.waiting import wait_for

pytestmark = pytest.mark.lab
STATIC_SERVER = str(Path(__file__).with_name("static_server.py"))


def test_client_default_route_is_the_router(lab: Lab) -> None:
    node = lab.topology.workers[0]
    answer = lab.client_exec(["ip", "route", "get", str(node.address)])
    assert f"via {lab.topology.client.gateway} dev eth0" in answer
    assert lab.client_exec(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).split()[3] == str(
        lab.topology.client.address
    )


def test_client_reaches_a_node_through_the_router(lab: Lab) -> None:
    node = lab.topology.workers[-1]
    marker = f"served by {node.name}"
    web_root = lab.run.directory / "client-test-web"
    web_root.mkdir()
    (web_root / "index.html").write_text(marker)
    server = Daemon(
        "http.server",
        ns_argv(
            lab.network.node_ns[node.name],
            [sys.executable, STATIC_SERVER, str(node.address), "8099", str(web_root)],
        ),
        lab.run.directory / "client-test-web.log",
    )
    server.start()
    try:
        page = wait_for(
            lambda: lab.client_exec(["curl", "-sS", "--max-time", "2", f"http://{node.address}:8099/"]),
            lambda body: marker in body,
            expected=f"the client fetches the page served on {node.address}:8099",
            timeout=15,
            tolerate=(CommandError,),
        ).value
        assert page.strip() == marker
        trace = lab.client_exec(["ip", "route", "get", str(node.address)])
        assert f"via {lab.topology.client.gateway}" in trace
    finally:
        server.stop()
