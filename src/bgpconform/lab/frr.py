"""The lab's router: FRR's zebra and bgpd in the router namespace, with sockets in the run directory.

Both daemons run as the `frr` user (FRR refuses root without the vty group) and in the foreground, as
our children, so teardown reaps them. Their vty sockets and the zebra API socket live in the run's
own directory, so two labs never share a socket and nothing is left under /etc/frr or /run/frr.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from bgpconform.commands import Place
from bgpconform.errors import HarnessError
from bgpconform.lab import defects
from bgpconform.lab.netns import ns_argv
from bgpconform.lab.prerequisites import FRR_DAEMON_DIR
from bgpconform.lab.supervisor import Daemon
from bgpconform.routers.frr import VtyshTransport
from bgpconform.routers.port import ECMP_PATHS
from bgpconform.topology import Topology

FRR_USER = "frr"


def render_zebra_conf(hostname: str, log: Path) -> str:
    return f"hostname {hostname}\nlog timestamp precision 3\nlog file {log} informational\n!\n"


def render_bgpd_conf(topology: Topology, log: Path) -> str:
    """The router's base BGP config; peers are added later through the router port, as on a real router.

    FSM transitions are logged with millisecond stamps: they are the evidence of when a session came up.
    """
    router = topology.router
    # RouterOS installs one of equal paths until multipath is set on its instance (7.22+); the lab's
    # RouterOS API raises this when the harness sets it.
    paths = ECMP_PATHS if router.ecmp and router.kind == "frr" else 1
    if defects.active("router-without-ecmp"):
        paths = 1
    return "\n".join(
        [
            "frr defaults traditional",
            f"hostname {router.name}",
            "log timestamp precision 3",
            f"log file {log} debugging",
            "debug bgp neighbor-events",
            "!",
            f"router bgp {router.asn}",
            f" bgp router-id {router.address}",
            " no bgp ebgp-requires-policy",
            " no bgp network import-check",
            " bgp bestpath as-path multipath-relax",
            " address-family ipv4 unicast",
            f"  maximum-paths {paths}",
            f"  maximum-paths ibgp {paths}",
            " exit-address-family",
            "!",
            "",
        ]
    )


class LabFrr:
    """Starts and stops the lab router's daemons."""

    def __init__(self, topology: Topology, namespace: str, run_dir: Path) -> None:
        self.topology = topology
        self.namespace = namespace
        self.directory = run_dir / "frr"
        self.transport = VtyshTransport(Place(namespace=namespace), str(self.directory))
        self._daemons: list[Daemon] = []

    @property
    def _zebra_conf(self) -> Path:
        return self.directory / "zebra.conf"

    @property
    def _bgpd_conf(self) -> Path:
        return self.directory / "bgpd.conf"

    def start(self, timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam(FRR_USER)
        os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._zebra_conf.write_text(
            render_zebra_conf(self.topology.router.name, self.directory / "zebra.log")
        )
        self._bgpd_conf.write_text(render_bgpd_conf(self.topology, self.directory / "bgpd.log"))
        self._launch(timeout)

    def restart(self, timeout: float = 10.0) -> None:
        """As an operator restarts a router running FRR: the running configuration saved (`write
        memory`), the daemons stopped (bgpd sends each peer a Cease) and started from the saved files."""
        if defects.active("router-boots-without-saved-peers"):
            # What it boots is the file as installed: the saves went where no start reads them.
            saved = render_bgpd_conf(self.topology, self.directory / "bgpd.log")
        else:
            saved = self._running_bgp_config()
        self._bgpd_conf.write_text(saved)
        self.stop()
        self._launch(timeout)

    def _running_bgp_config(self) -> str:
        """bgpd's part of the running configuration: from the first line of the base file's preamble
        (`frr defaults`) on, as `show running-config` prints it, the `log file` line included."""
        text = self.transport.vtysh("show running-config")
        lines = text.splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("frr defaults")), 0)
        return "\n".join(lines[start:]) + "\n"

    def _launch(self, timeout: float) -> None:
        zserv = self.directory / "zserv.api"
        for name, conf in (("zebra", self._zebra_conf), ("bgpd", self._bgpd_conf)):
            argv = [
                str(FRR_DAEMON_DIR / name),
                "-f", str(conf),
                "-i", str(self.directory / f"{name}.pid"),
                "--vty_socket", str(self.directory),
                "-z", str(zserv),
            ]  # fmt: skip
            socket = self.directory / f"{name}.vty"
            socket.unlink(missing_ok=True)  # a restart's daemon must make its own
            daemon = Daemon(name, ns_argv(self.namespace, argv), self.directory / f"{name}.out")
            daemon.start()
            self._daemons.append(daemon)
            daemon.wait_ready(socket.exists, f"{name} vty socket {socket} present", timeout)
        self._daemons[-1].wait_ready(self._bgpd_answers, "bgpd answering `show bgp summary json`", timeout)

    def _bgpd_answers(self) -> bool:
        try:
            self.transport.vtysh("show bgp summary json")
        except HarnessError:
            return False
        return True

    @property
    def pids(self) -> list[int]:
        return [d.pid for d in self._daemons if d.pid is not None]

    def stop(self) -> None:
        for daemon in reversed(self._daemons):
            daemon.stop()
        self._daemons.clear()

    def remove_files(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
