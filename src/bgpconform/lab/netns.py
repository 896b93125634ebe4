"""Thin wrappers over iproute2 for namespaces, links and sysctls.

iproute2's batch mode keeps bring-up to a handful of processes, and the commands stay the ones an
engineer would type, so a failure reads as the exact `ip` line that failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bgpconform.commands import run


def ip_batch(commands: Iterable[str], namespace: str | None = None) -> None:
    """Run `ip` commands in one process, in the root namespace or inside `namespace`."""
    lines = [line for line in commands if line]
    if not lines:
        return
    argv = ["ip"] + (["-n", namespace] if namespace else []) + ["-batch", "-"]
    run(argv, input_text="\n".join(lines) + "\n")


def netns_exec(namespace: str, argv: Sequence[str], *, check: bool = True, timeout: float = 30.0) -> str:
    """Run a command inside a namespace and return its standard output."""
    return run(["ip", "netns", "exec", namespace, *argv], check=check, timeout=timeout).stdout


def set_sysctls(namespace: str, values: dict[str, str]) -> None:
    """Set per-namespace sysctls (forwarding and the like) in one process."""
    if values:
        netns_exec(namespace, ["sysctl", "-q", "-w", *(f"{key}={value}" for key, value in values.items())])


def ns_argv(namespace: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs `argv` inside `namespace`, for processes the lab supervises."""
    return ["ip", "netns", "exec", namespace, *argv]
