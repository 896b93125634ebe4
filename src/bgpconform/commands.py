"""Running commands, here, in a network namespace or on another host over SSH, with failures turned
into evidence-carrying errors.

The outside client and an FRR router are reached the same three ways, so both take a `Place` and run
the commands an engineer would type there (`curl`, `vtysh`, `ip route`), which keeps a failure readable
as the exact command line that failed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from bgpconform.errors import CommandError

DEFAULT_TIMEOUT = 30.0


def run(
    argv: Sequence[str],
    *,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; a non-zero exit becomes a `CommandError` carrying its output.

    The command runs in a process group of its own: a terminal's Ctrl-C reaches every process of the
    run's group, and would kill the `ip netns delete` that the run's own cleanup is waiting on. The
    run decides when a command stops: interrupted or past its timeout, the whole group is killed (a
    `sudo` or `ip netns exec` leaves children of its own). Outside the terminal's group it must not
    read the terminal either (it would be stopped, SIGTTIN): stdin is the input given, or nothing.
    """
    args = list(argv)
    try:
        process = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0,
        )
    except FileNotFoundError as exc:
        raise CommandError(args, 127, "", f"{args[0]}: not found") from exc
    with process:
        try:
            stdout, stderr = process.communicate(input_text, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(process)
            raise CommandError(args, -1, "", f"no answer within {timeout:.0f}s") from exc
        except BaseException:
            _kill_group(process)
            raise
    done = subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
    if check and done.returncode != 0:
        raise CommandError(args, done.returncode, done.stdout, done.stderr)
    return done


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the group is the command's own: process_group=0
    process.wait()


# BatchMode: a missing key fails at once instead of prompting for a password nobody will type.
SSH_OPTIONS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10")


@dataclass(frozen=True)
class Place:
    namespace: str | None = None
    ssh: str | None = None
    sudo: bool = False

    def argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs `argv` here."""
        sudo = ["sudo", "-n"] if self.sudo else []  # -n: fail at once rather than ask for a password
        if self.ssh is not None:
            return ["ssh", *SSH_OPTIONS, self.ssh, "--", shlex.join([*sudo, *argv])]
        if self.namespace is not None:  # `ip netns exec` itself needs root, so sudo goes first
            return [*sudo, "ip", "netns", "exec", self.namespace, *argv]
        return [*sudo, *argv]

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return run(self.argv(argv), check=check, timeout=timeout)

    def __str__(self) -> str:
        if self.ssh is not None:
            return f"ssh {self.ssh}"
        if self.namespace is not None:
            return f"namespace {self.namespace}"
        return "this machine"
