"""`bgpconform lab up / status / down` as a person runs them: a lab to explore, then nothing left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgpconform.cli.lab_commands import read_state, state_path
from bgpconform.lab.runs import (
    list_namespaces,
    namespace_prefix,
    read_record,
    state_root,
)
from bgpconform.topology import load_topology
from bgpconform.waiting import wait_for
from tests.lab.processes import running_command_lines

REPO = Path(__file__).resolve().parents[2]


def bgpconform(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bgpconform.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture
def lab_up() -> Iterator[subprocess.CompletedProcess[str]]:
    started = bgpconform("lab", "up", "--seed", "7", "--shortcut", "short-bgp-timers")
    try:
        yield started
    finally:
        bgpconform("lab", "down")


def test_up_explore_down_leaves_nothing(lab_up: subprocess.CompletedProcess[str]) -> None:
    assert lab_up.returncode == 0, lab_up.stderr
    state = read_state()
    assert state is not None
    assert state.alive
    assert f"export KUBECONFIG={state.kubeconfig}" in lab_up.stdout
    assert f"ip netns exec {state.client_namespace}" in lab_up.stdout

    env = {**os.environ, "KUBECONFIG": state.kubeconfig}
    nodes = subprocess.run(
        ["kubectl", "get", "nodes", "-o", "json"], env=env, capture_output=True, text=True, check=True
    )
    conditions = {
        item["metadata"]["name"]: next(c for c in item["status"]["conditions"] if c["type"] == "Ready")
        for item in json.loads(nodes.stdout)["items"]
    }
    assert set(conditions) == set(state.details["namespaces"]["nodes"])
    assert {c["status"] for c in conditions.values()} == {"False"}

    router_north = subprocess.run(
        ["ip", "netns", "exec", state.client_namespace, "ip", "-j", "route", "show", "default"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(router_north.stdout)[0]["gateway"]

    # The router command it prints works as printed (a bare `vtysh -N` finds none of the lab's daemons).
    printed = next(line for line in lab_up.stdout.splitlines() if line.startswith("Router (FRR): "))
    router = subprocess.run(
        ["bash", "-c", printed.removeprefix("Router (FRR): ")], capture_output=True, text=True, check=False
    )
    assert router.returncode == 0, router.stdout + router.stderr
    assert "failed to connect" not in router.stdout + router.stderr
    assert "BGP" in router.stdout  # "No BGP neighbors found" until the router is configured

    status = bgpconform("lab", "status")
    assert status.returncode == 0
    assert "NotReady" in status.stdout
    assert "seed 7 (replay: bgpconform lab up --seed 7)" in status.stdout
    assert "shortcut in force: short-bgp-timers" in status.stdout

    again = bgpconform("lab", "up")
    assert again.returncode == 2
    assert "already up" in again.stderr

    prefix = f"bgpc-{state.details['run_id']}-"
    down = bgpconform("lab", "down")
    assert down.returncode == 0, down.stderr
    assert not [ns for ns in list_namespaces() if ns.startswith(prefix)]
    assert not Path(state.details["run_directory"]).exists()
    assert not state_path().exists()
    assert not state.alive
    assert bgpconform("lab", "status").returncode == 1


def _runs() -> set[str]:
    root = state_root()
    return {entry.name for entry in root.iterdir() if entry.is_dir()} if root.is_dir() else set()


def test_up_with_a_bad_topology_says_which_file(tmp_path: Path) -> None:
    """The file is checked while the lab process starts; that process is stopped and leaves nothing."""
    broken = tmp_path / "broken.yaml"
    broken.write_text("cluster:\n  name: x\n")
    runs_before = _runs()
    result = bgpconform("lab", "up", "--topology", str(broken))
    assert result.returncode == 2
    assert str(broken) in result.stderr
    assert read_state() is None
    assert running_command_lines("bgpconform.cli lab serve", str(broken)) == []
    assert _runs() - runs_before == set()


@pytest.mark.parametrize(
    "reached",
    [
        pytest.param("claimed", id="while-the-wire-builds-and-modules-import"),
        pytest.param("api/kubeconfig", id="while-the-control-plane-starts"),
    ],
)
def test_a_signal_while_the_lab_starts_stops_it_and_removes_what_it_made(reached: str) -> None:
    """`lab up` stops its lab process this way when the topology check fails or the wait times out."""
    runs_before = _runs()
    serving = subprocess.Popen(
        [sys.executable, "-m", "bgpconform.cli", "lab", "serve", "--topology", "topologies/lab.yaml"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def run_reached() -> list[str]:
        """The serving process's run, once it exists and holds `reached` (a file in its directory)."""
        return [
            run
            for run in _runs() - runs_before
            if (record := read_record(state_root() / run)) is not None
            and record.owner_pid == serving.pid
            and (reached == "claimed" or (state_root() / run / reached).exists())
        ]

    try:
        claimed = wait_for(
            run_reached,
            bool,
            expected=f"the lab process's run at {reached!r}",
            timeout=60,
            interval=0.005,
            max_interval=0.01,
        ).value
        serving.send_signal(signal.SIGTERM)
        output, _ = serving.communicate(timeout=60)
    finally:
        if serving.poll() is None:
            serving.kill()
            serving.wait()
    assert serving.returncode == 0, output
    assert "stopped by SIGTERM while starting" in output
    assert "is up" not in output
    [run_id] = claimed
    assert not [ns for ns in list_namespaces() if ns.startswith(namespace_prefix(run_id))]
    assert run_id not in _runs()
    assert read_state() is None


def test_up_at_a_stage_leaves_the_walkthrough_there() -> None:
    """`--stage lb-ipam`: the nginx service answers the outside client through its LB IP, by hand."""
    started = bgpconform("lab", "up", "--stage", "lb-ipam")
    try:
        assert started.returncode == 0, started.stderr
        state = read_state()
        assert state is not None
        assert state.details["stage"] == "lb-ipam"
        env = {**os.environ, "KUBECONFIG": state.kubeconfig}
        workload = load_topology(REPO / "topologies" / "lab.yaml").workload
        jsonpath = "jsonpath={.status.loadBalancer.ingress[0].ip}"
        service = subprocess.run(
            ["kubectl", "get", "svc", workload.service_name, "-n", workload.namespace, "-o", jsonpath],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        page = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                state.client_namespace,
                "curl",
                "-sS",
                "--max-time",
                "5",
                f"http://{service.stdout.strip()}:{workload.port}/",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "Welcome to nginx!" in page.stdout, page.stderr
    finally:
        assert bgpconform("lab", "down").returncode == 0


def test_up_with_an_unknown_stage_lists_the_stages() -> None:
    result = bgpconform("lab", "up", "--stage", "nope")
    assert result.returncode == 2
    assert "choose one of: minimal, cilium, bgp-enabled, bgp-ready, peering, lb-ipam" in result.stderr
    assert read_state() is None


def test_up_with_a_routeros_router_serves_its_api_on_loopback() -> None:
    """`lab up --topology topologies/lab-routeros.yaml`: the printed RouterOS API answers librouteros,
    with the lab router's default login, and shows the walkthrough's sessions once peering is done."""
    import librouteros

    env = {k: v for k, v in os.environ.items() if not k.startswith("BGPCONFORM_ROUTER_")}
    topology = REPO / "topologies" / "lab-routeros.yaml"
    started = bgpconform("lab", "up", "--topology", str(topology), "--stage", "peering", env=env)
    try:
        assert started.returncode == 0, started.stderr
        state = read_state()
        assert state is not None
        endpoint = state.details["routeros_api"]
        assert f"Router (RouterOS 7.8 API): {endpoint}" in started.stdout
        host, port = endpoint.rsplit(":", 1)
        assert host == "127.0.0.1"
        api = librouteros.connect(host, "admin", "", port=int(port), timeout=5)
        try:
            sessions = list(api.path("routing", "bgp", "session"))
        finally:
            api.close()
        assert sorted(row["name"] for row in sessions) == [f"PEER_TO_K3S_WN_{i}-1" for i in (1, 2, 3)]
        assert all(row["established"] is True for row in sessions)
        status = bgpconform("lab", "status", env=env)
        assert f"RouterOS 7.8 API {endpoint}" in status.stdout
    finally:
        assert bgpconform("lab", "down").returncode == 0
