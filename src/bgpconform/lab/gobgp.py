"""A node's BGP speaker: gobgpd configured the way Cilium's BGP control plane configures its GoBGP.

Cilium embeds GoBGP with ListenPort -1 (FACTS.md, `pkg/bgpv1/gobgp/routermgr.go`): nodes only dial
out, so the router must accept inbound sessions (the `router-dials` shortcut's speaker listens on 179
in its node's namespace). Each speaker's gRPC API is a unix socket in the run directory and pprof is
off, so several speakers coexist and nothing else listens on a shared port.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from bgpconform.bgp_states import SessionState
from bgpconform.commands import run
from bgpconform.errors import CommandError, HarnessError
from bgpconform.lab.netns import ns_argv
from bgpconform.lab.supervisor import Daemon

# GoBGP's API enum for session_state (FACTS.md: 6 = established).
_GOBGP_STATES = {
    0: SessionState.UNKNOWN,
    1: SessionState.IDLE,
    2: SessionState.CONNECT,
    3: SessionState.ACTIVE,
    4: SessionState.OPEN_SENT,
    5: SessionState.OPEN_CONFIRM,
    6: SessionState.ESTABLISHED,
}


@dataclass(frozen=True)
class Timers:
    connect_retry: int
    hold: int
    keepalive: int


@dataclass(frozen=True)
class Neighbor:
    """A peer the speaker dials; without timers GoBGP's defaults apply, as Cilium 1.13 leaves them."""

    address: IPv4Address
    asn: int
    timers: Timers | None = Timers(connect_retry=1, hold=9, keepalive=3)
    restart_time: int | None = None  # graceful restart advertised with this restart time; None: off


@dataclass(frozen=True)
class SpeakerPeer:
    """The speaker's view of one session, the raw material of `cilium bgp peers`."""

    address: IPv4Address
    local_asn: int
    peer_asn: int
    state: SessionState
    uptime_seconds: float | None
    received: int
    accepted: int
    advertised: int


BGP_PORT = 179


def render_config(
    router_id: IPv4Address, asn: int, neighbors: list[Neighbor], *, listen: bool = False
) -> str:
    """gobgpd TOML; `port = -1` keeps the speaker from listening, as in Cilium (a listening speaker is
    the `router-dials` shortcut's)."""
    port = BGP_PORT if listen else -1
    lines = ["[global.config]", f"  as = {asn}", f'  router-id = "{router_id}"', f"  port = {port}", ""]
    for neighbor in neighbors:
        lines += [
            "[[neighbors]]",
            "  [neighbors.config]",
            f'    neighbor-address = "{neighbor.address}"',
            f"    peer-as = {neighbor.asn}",
        ]
        if neighbor.timers is not None:
            lines += [
                "  [neighbors.timers.config]",
                f"    connect-retry = {neighbor.timers.connect_retry}",
                f"    hold-time = {neighbor.timers.hold}",
                f"    keepalive-interval = {neighbor.timers.keepalive}",
            ]
        if neighbor.restart_time is not None:
            # The capability with ipv4-unicast's forwarding state kept, as Cilium sets it (1.14+): a
            # helper that sees the session drop keeps the routes as stale for `restart-time`.
            lines += [
                "  [neighbors.graceful-restart.config]",
                "    enabled = true",
                f"    restart-time = {neighbor.restart_time}",
                "  [[neighbors.afi-safis]]",
                "    [neighbors.afi-safis.config]",
                '      afi-safi-name = "ipv4-unicast"',
                "    [neighbors.afi-safis.mp-graceful-restart.config]",
                "      enabled = true",
            ]
        lines.append("")
    return "\n".join(lines)


class GoBgpSpeaker:
    """One gobgpd in a node namespace, driven through the `gobgp` CLI over its unix socket."""

    def __init__(
        self,
        *,
        node: str,
        namespace: str,
        directory: Path,
        router_id: IPv4Address,
        asn: int,
        neighbors: list[Neighbor],
        listen: bool = False,
    ) -> None:
        self.node = node
        self.listen = listen
        self.namespace = namespace
        self.directory = directory
        self.router_id = router_id
        self.asn = asn
        self.neighbors = list(neighbors)
        self.config_path = directory / "gobgpd.toml"
        self.socket_path = directory / "gobgpd.sock"
        self._daemon: Daemon | None = None
        # What this speaker was told to announce since it started, kept as Cilium's reconciler keeps
        # its announcements in memory: reading gobgpd's RIB on every pass cost a `gobgp` call per
        # agent and pass, 50 agents reconciling on every service change.
        self._announced: set[IPv4Network] = set()

    @property
    def running(self) -> bool:
        return self._daemon is not None and self._daemon.running

    @property
    def pid(self) -> int | None:
        return self._daemon.pid if self._daemon else None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        self.config_path.write_text(
            render_config(self.router_id, self.asn, self.neighbors, listen=self.listen)
        )
        self._announced = set()
        argv = [
            "gobgpd",
            "-f", str(self.config_path),
            "--api-hosts", f"unix://{self.socket_path}",
            "--pprof-disable",
            "--log-plain",
            "-l", "info",
        ]  # fmt: skip
        self._daemon = Daemon(
            f"gobgpd on {self.node}", ns_argv(self.namespace, argv), self.directory / "gobgpd.log"
        )
        self._daemon.start()
        self._daemon.wait_ready(self._answers, f"gobgpd API answering on {self.socket_path}", timeout)

    def stop(self) -> None:
        """SIGTERM: gobgpd closes each session with a Cease notification, so peers drop its routes."""
        if self._daemon is not None:
            self._daemon.stop()
            self._daemon = None
        self.socket_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """The speaker gone without a word, as a restarting agent's embedded GoBGP goes: the sessions'
        TCP connections just close, which a graceful-restart helper answers by keeping the routes."""
        if self._daemon is not None:
            self._daemon.kill()
            self._daemon = None
        self.socket_path.unlink(missing_ok=True)

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            self._cli("global")
        except HarnessError:
            return False
        return True

    def _cli(self, *args: str) -> str:
        argv = ["gobgp", "--target", f"unix://{self.socket_path}", *args]
        try:
            return run(argv, timeout=10).stdout
        except CommandError as exc:
            raise HarnessError(f"gobgp on {self.node} failed: {exc}") from exc

    def originate(self, prefix: IPv4Network) -> None:
        """Announce a prefix to every neighbor; the next hop becomes the session's local address."""
        self._cli("global", "rib", "add", str(prefix), "-a", "ipv4")
        self._announced.add(prefix)

    def withdraw(self, prefix: IPv4Network) -> None:
        self._cli("global", "rib", "del", str(prefix), "-a", "ipv4")
        self._announced.discard(prefix)

    def announced(self) -> set[IPv4Network]:
        """What this speaker was told to announce since it started (`originated` asks gobgpd itself)."""
        return set(self._announced)

    def originated(self) -> list[IPv4Network]:
        """Prefixes this speaker announces itself (not those it learned)."""
        rib = json.loads(self._cli("-j", "global", "rib", "-a", "ipv4") or "{}")
        local = []
        for prefix, paths in rib.items():
            if any(not path.get("neighbor-ip") and not path.get("source-id") for path in paths):
                local.append(IPv4Network(prefix))
        return sorted(local)

    def received(self, peer: IPv4Address) -> list[IPv4Network]:
        """Prefixes received from a peer (Adj-RIB-In)."""
        data = json.loads(self._cli("-j", "neighbor", str(peer), "adj-in", "-a", "ipv4") or "{}")
        return sorted(IPv4Network(prefix) for prefix in data)

    def timers_in_force(self, peer: IPv4Address) -> dict[str, int]:
        """The neighbor's configured timers as gobgpd holds them (its defaults where none were given)."""
        detail: dict[str, Any] = json.loads(self._cli("-j", "neighbor", str(peer)) or "{}")
        config = detail.get("timers", {}).get("config", {})
        return {key: int(value) for key, value in config.items() if isinstance(value, int | float)}

    def peers(self) -> list[SpeakerPeer]:
        """Every configured neighbor with its state and per-family counts."""
        listed: list[dict[str, Any]] = json.loads(self._cli("-j", "neighbor") or "[]")
        peers = []
        for entry in listed:
            # Only the per-neighbor query carries the advertised count (the API's EnableAdvertised,
            # which Cilium sets); the list leaves it out.
            address = entry.get("state", {}).get("neighbor_address") or entry.get("conf", {}).get(
                "neighbor_address"
            )
            detail: dict[str, Any] = json.loads(self._cli("-j", "neighbor", str(address)) or "{}") or entry
            peers.append(_peer_from_json(detail, self.asn))
        return peers


def _peer_from_json(entry: dict[str, Any], local_asn: int) -> SpeakerPeer:
    state = entry.get("state", {})
    conf = entry.get("conf", {})
    session = _GOBGP_STATES.get(int(state.get("session_state", 0)), SessionState.UNKNOWN)
    received = accepted = advertised = 0
    for family in entry.get("afi_safis", []):
        family_state = family.get("state", {})
        received += int(family_state.get("received", 0))
        accepted += int(family_state.get("accepted", 0))
        advertised += int(family_state.get("advertised", 0))
    uptime = None
    if session is SessionState.ESTABLISHED:
        timers = entry.get("timers", {}).get("state", {})
        uptime_value = timers.get("uptime", {})
        if isinstance(uptime_value, dict) and "seconds" in uptime_value:
            uptime = max(0.0, time.time() - float(uptime_value["seconds"]))
    return SpeakerPeer(
        address=IPv4Address(state.get("neighbor_address") or conf.get("neighbor_address")),
        local_asn=int(conf.get("local_asn") or local_asn),
        peer_asn=int(conf.get("peer_asn", 0)),
        state=session,
        uptime_seconds=uptime,
        received=received,
        accepted=accepted,
        advertised=advertised,
    )
