"""Where a command runs: this machine, a network namespace on it, or another host over SSH.

The outside client and an FRR router are reached the same three ways, so both take a `Place` and run
the commands an engineer would type there (`curl`, `vtysh`, `ip route`), which keeps a failure readable
as the exact command line that failed.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from bgpconform.lab.commands import run

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
