"""The operator's leader election: client-go's Lease lock, as every cilium-operator replica runs it.

Each replica registers the CRDs, then campaigns for Lease `cilium-operator-resource-lock` in its
namespace under an identity of its hostname and ten random characters; only the holder runs the
leader's work (LB IPAM, cluster-pool IPAM). Timers are the operator's defaults: lease 15 s, renew
deadline 10 s, retry period 2 s; a replica that stops releases the lease (`ReleaseOnCancel`), so its
successor takes over within a retry period, while one that dies holding it is waited out for the
whole lease (docs/verified-facts.md, "Cilium operator: leader election").

The rules are client-go's `tryAcquireOrRenew`: a lease is free when it has no holder or when the
record a candidate last saw has not changed for a lease duration by the candidate's own clock (never
by the timestamps in it, which another machine wrote); every write is conditional on the
resourceVersion read, so two candidates cannot both win.
"""

from __future__ import annotations

import random
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bgpconform.kubeapi.client import ApiException, Kube, Resources

LOCK_NAME = "cilium-operator-resource-lock"


@dataclass(frozen=True)
class ElectionTimers:
    """cilium-operator's `--leader-election-*` defaults."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


JITTER = 1.2  # client-go's JitterFactor for the acquire loop


def _micro_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def identity(hostname: str, rng: random.Random) -> str:
    """`rand.RandomStringWithPrefix(hostname+"-", 10)`, as the operator names itself."""
    return hostname + "-" + "".join(rng.choice(string.ascii_letters) for _ in range(10))


class LeaderElector:
    """Campaign, lead, renew and release one identity's claim on the lock."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        me: str,
        *,
        rng: random.Random,
        timers: ElectionTimers | None = None,
        on_new_leader: Callable[[str], None] = lambda _holder: None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.me = me
        self.rng = rng
        self.timers = timers or ElectionTimers()
        self.on_new_leader = on_new_leader
        self._observed: dict[str, Any] | None = None
        self._observed_at = 0.0
        self._reported_leader: str | None = None
        self.leading = False

    # -- one attempt -------------------------------------------------------------------------------
    def try_acquire_or_renew(self) -> bool:
        """One `tryAcquireOrRenew`: True when this identity holds the lease afterwards."""
        now = _micro_now()
        try:
            lease = self.kube.get_or_none(Resources.LEASES, LOCK_NAME, self.namespace)
        except ApiException:
            return False
        if lease is None:
            record = {
                "holderIdentity": self.me,
                "leaseDurationSeconds": int(self.timers.lease_duration),
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 0,
            }
            body = {"metadata": {"name": LOCK_NAME, "namespace": self.namespace}, "spec": record}
            try:
                self.kube.create(Resources.LEASES, body, self.namespace)
            except ApiException:
                return False
            self._saw(record)
            return True
        spec: dict[str, Any] = dict(lease.get("spec") or {})
        if spec != self._observed:
            self._saw(spec)
        holder = str(spec.get("holderIdentity") or "")
        if holder and holder != self.me and time.monotonic() < self._observed_at + self.timers.lease_duration:
            return False
        record = {
            "holderIdentity": self.me,
            "leaseDurationSeconds": int(self.timers.lease_duration),
            "renewTime": now,
            "acquireTime": spec.get("acquireTime") if holder == self.me else now,
            "leaseTransitions": int(spec.get("leaseTransitions") or 0) + (0 if holder == self.me else 1),
        }
        return self._write(lease, record)

    def _saw(self, record: dict[str, Any]) -> None:
        self._observed = dict(record)
        self._observed_at = time.monotonic()
        holder = str(record.get("holderIdentity") or "")
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            self.on_new_leader(holder)

    def _write(self, lease: dict[str, Any], record: dict[str, Any]) -> bool:
        body = {**lease, "spec": record}
        try:
            self.kube.replace(Resources.LEASES, body)
        except ApiException:
            return False  # someone else wrote first (409) or the server is away: not ours this time
        self._saw(record)
        return True

    # -- loops -------------------------------------------------------------------------------------
    def acquire(self, stop: threading.Event) -> bool:
        """Campaign every retry period (jittered) until this identity leads or `stop` is set."""
        while not stop.is_set():
            if self.try_acquire_or_renew():
                self.leading = True
                return True
            stop.wait(self.timers.retry_period * (1 + JITTER * self.rng.random()))
        return False

    def renew_until_lost(self, stop: threading.Event) -> bool:
        """Renew every retry period; False when a renewal has not succeeded for the renew deadline
        (leadership lost), True when `stop` ended the term."""
        last_renewed = time.monotonic()
        while not stop.wait(self.timers.retry_period):
            if self.try_acquire_or_renew():
                last_renewed = time.monotonic()
            elif time.monotonic() - last_renewed > self.timers.renew_deadline:
                self.leading = False
                return False
        return True

    def release(self) -> None:
        """`ReleaseOnCancel`: hand the lease back with no holder, so a candidate need not wait it out."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = self.kube.get_or_none(Resources.LEASES, LOCK_NAME, self.namespace)
        except ApiException:
            return
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.me:
            return
        now = _micro_now()
        spec = lease.get("spec") or {}
        self._write(
            lease,
            {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": int(spec.get("leaseTransitions") or 0),
            },
        )
