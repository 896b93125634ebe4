"""What the lab needs from the machine, checked up front so a missing piece is one clear line."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bgpconform.commands import run
from bgpconform.errors import PrerequisiteError

FRR_DAEMON_DIR = Path("/usr/lib/frr")


@dataclass(frozen=True)
class Tool:
    """An executable the lab runs and the Debian package that provides it."""

    name: str
    path: str | None
    package: str

    def found(self) -> str | None:
        if self.path is not None:
            return self.path if os.access(self.path, os.X_OK) else None
        return shutil.which(self.name)


LAB_TOOLS = (
    Tool("ip", None, "iproute2"),
    Tool("zebra", str(FRR_DAEMON_DIR / "zebra"), "frr"),
    Tool("bgpd", str(FRR_DAEMON_DIR / "bgpd"), "frr"),
    Tool("vtysh", None, "frr"),
    Tool("gobgpd", None, "gobgpd"),
    Tool("gobgp", None, "gobgpd"),
    Tool("nginx", None, "nginx-light"),
    Tool("iptables", None, "iptables"),
)

SETUP_HINT = "run `./run setup` from the repository (it installs them), or apt-get install {packages}"


def check_lab_prerequisites() -> None:
    """Fail with one message naming everything missing: root, network namespaces, daemon binaries."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append(
            "it needs root (it creates network namespaces and starts routing daemons); fix: run as root, "
            "e.g. `sudo ./run suite` or `sudo .venv/bin/pytest`"
        )
    missing = [tool for tool in LAB_TOOLS if tool.found() is None]
    if missing:
        packages = " ".join(sorted({tool.package for tool in missing}))
        names = ", ".join(tool.name for tool in missing)
        problems.append(f"missing programs: {names}; " + SETUP_HINT.format(packages=packages))
    elif os.geteuid() == 0:
        probe = run(["ip", "netns", "list"], check=False)
        if probe.returncode != 0:
            problems.append(f"`ip netns` does not work here: {probe.stderr.strip()}")
    if len(problems) == 1:
        raise PrerequisiteError(f"the lab cannot run on this machine: {problems[0]}")
    if problems:
        raise PrerequisiteError("the lab cannot run on this machine:\n  - " + "\n  - ".join(problems))
