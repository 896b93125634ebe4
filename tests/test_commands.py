"""Where commands run: the command line for each place, and a real run in a namespace and here."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from bgpconform.commands import Place
from bgpconform.errors import CommandError


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
