"""Where commands run: the command line for each place, and a real run in a namespace and here."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bgpconform.commands import Place, run
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


def test_a_command_past_its_timeout_is_ended_with_every_process_it_started(tmp_path: Path) -> None:
    """`sudo` and `ip netns exec` start children of their own; in the command's own group they would
    outlive it if only the command were killed."""
    pid_file = tmp_path / "grandchild.pid"
    with pytest.raises(CommandError, match="no answer within"):
        run(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], timeout=1)
    grandchild = int(pid_file.read_text())
    wait_for(
        lambda: _running(grandchild),
        lambda running: not running,
        expected=f"the command's own child {grandchild} ended with it",
        timeout=10,
    )


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


STDIN_KEPT_OPEN = """
from bgpconform.commands import run

done = run(["cat"], timeout=5, check=False)
print("read:", repr(done.stdout), done.returncode, flush=True)
"""


def test_a_command_reads_no_input_but_what_it_is_given() -> None:
    """In a group of its own it must not read the run's terminal (the kernel would stop it): a
    command given no input reads none, even where the run's stdin stays open."""
    child = subprocess.Popen(
        [sys.executable, "-c", STDIN_KEPT_OPEN],
        stdin=subprocess.PIPE,  # open and silent, as a terminal nobody types into
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert child.stdout is not None
        said = child.stdout.readline()
    finally:
        child.kill()
        child.wait()
    assert said == "read: '' 0\n", said
    assert run(["cat"], input_text="given").stdout == "given"
