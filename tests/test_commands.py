"""Where commands run: the command line for each place, and a real run in a namespace and here."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bgpconform.commands import Place
from bgpconform.errors import CommandError
from bgpconform.waiting import wait_for


def test_this_machine_runs_the_command_as_given() -> None:
    assert Place().argv(["vtysh", "-c", "show bgp summary"]) == ["vtysh", "-c", "show bgp summary"]
    assert str(Place()) == "this machine"


def test_a_namespace_wraps_the_command_in_ip_netns_exec() -> None:
    assert Place(namespace="rack").argv(["ip", "-j", "route"]) == [
        "ip",
        "netns",
        "exec",
        "rack",
        "ip",
        "-j",
        "route",
    ]
    expected = ["sudo", "-n", "ip", "netns", "exec", "rack", "vtysh"]  # ip netns exec needs root itself
    assert Place(namespace="rack", sudo=True).argv(["vtysh"]) == expected


def test_ssh_sends_one_quoted_command_line_and_never_prompts() -> None:
    argv = Place(ssh="frr@192.0.2.1", sudo=True).argv(["vtysh", "-c", "show ip route 10.0.0.0/8 json"])
    assert argv[:5] == ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    assert argv[5:7] == ["frr@192.0.2.1", "--"]
    assert shlex.split(argv[7]) == ["sudo", "-n", "vtysh", "-c", "show ip route 10.0.0.0/8 json"]
    assert str(Place(ssh="frr@192.0.2.1")) == "ssh frr@192.0.2.1"


@pytest.mark.lab
def test_a_command_runs_in_its_namespace() -> None:
    name = f"bgpc-commands-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        links = Place(namespace=name).run(["ip", "-o", "link"]).stdout
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True)


def test_a_missing_program_is_a_command_error_naming_it() -> None:
    with pytest.raises(CommandError, match="no-such-program: not found"):
        Place().run(["no-such-program"])


CTRL_C_DURING_A_COMMAND = """
import signal
import sys
from pathlib import Path

from bgpconform.commands import run

signal.signal(signal.SIGINT, lambda signum, frame: print("run: Ctrl-C noted", flush=True))
marker = Path(sys.argv[1])
done = run(["sh", "-c", f"touch {marker}; while [ -e {marker} ]; do sleep 0.01; done; echo finished"],
           check=False)
print("command:", done.returncode, done.stdout.strip(), flush=True)
"""


def test_a_terminals_ctrl_c_to_the_runs_group_leaves_its_commands_to_the_run(tmp_path: Path) -> None:
    """A Ctrl-C reaches every process of the terminal's foreground group. The run's cleanup waits on
    commands (`ip netns delete`) that must not die of it: the run decides when they stop."""
    marker = tmp_path / "command-running"
    child = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_DURING_A_COMMAND, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a group of its own, as a terminal gives a command
    )
    try:
        wait_for(marker.exists, bool, expected="the command started", timeout=30)
        os.killpg(child.pid, signal.SIGINT)  # the terminal's Ctrl-C, to the whole group: pending at once
        marker.unlink()  # lets the command finish, unless the Ctrl-C ended it
        output, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "run: Ctrl-C noted" in output, output
    assert "command: 0 finished" in output, output
