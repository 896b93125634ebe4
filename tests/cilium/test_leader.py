"""The operator replicas' leader election over a real API server: one leader at a time, a released
lease taken at the next try, a dead leader's lease waited out for its whole duration, as client-go's
Lease lock behaves (docs/verified-facts.md, "Cilium operator: leader election"). Short timers keep
the waits to seconds; the rules do not depend on their length."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bgpconform.kubeapi.client import Kube, Resources, new_api_client
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.cilium.leader import LOCK_NAME, ElectionTimers, LeaderElector, identity
from bgpconform.waiting import wait_for

SHORT = ElectionTimers(lease_duration=3.0, renew_deadline=2.0, retry_period=0.2)
NAMESPACE = "kube-system"


@pytest.fixture
def clients(server: ApiServer) -> Iterator[list[Kube]]:
    """One API client per replica, as each operator pod has its own."""
    made: list[Any] = []

    def more() -> Kube:
        api = new_api_client(str(server.kubeconfig_path))
        made.append(api)
        return Kube(api)

    yield [more() for _ in range(3)]
    for api in made:
        api.close()


def elector(kube: Kube, host: str, seed: int) -> LeaderElector:
    rng = random.Random(seed)
    return LeaderElector(kube, NAMESPACE, identity(host, rng), rng=rng, timers=SHORT)


def holder(kube: Kube) -> str:
    lease = kube.get(Resources.LEASES, LOCK_NAME, NAMESPACE)
    return str(lease["spec"].get("holderIdentity") or "")


def test_the_identity_is_the_hostname_and_ten_random_letters() -> None:
    name = identity("k3s-worker-node-01", random.Random(7))
    prefix, suffix = name.rsplit("-", 1)
    assert prefix == "k3s-worker-node-01"
    assert len(suffix) == 10
    assert suffix.isalpha()
    assert identity("k3s-worker-node-01", random.Random(8)) != name


def test_candidates_campaigning_at_once_elect_exactly_one(clients: list[Kube]) -> None:
    candidates = [elector(kube, f"node-{i}", i) for i, kube in enumerate(clients)]
    with ThreadPoolExecutor(max_workers=len(candidates)) as pool:
        won = list(pool.map(lambda c: c.try_acquire_or_renew(), candidates))
    assert won.count(True) == 1, won
    winner = candidates[won.index(True)]
    assert holder(clients[0]) == winner.me
    for loser in (c for c, w in zip(candidates, won, strict=True) if not w):
        assert not loser.try_acquire_or_renew()  # the lease is fresh: nobody takes it over


def test_a_released_lease_is_taken_at_the_next_try_and_counts_a_transition(clients: list[Kube]) -> None:
    first, second = elector(clients[0], "node-a", 1), elector(clients[1], "node-b", 2)
    stop = threading.Event()
    assert first.acquire(stop)
    assert not second.try_acquire_or_renew()
    first.release()
    lease = clients[2].get(Resources.LEASES, LOCK_NAME, NAMESPACE)
    assert lease["spec"]["holderIdentity"] == ""
    assert lease["spec"]["leaseDurationSeconds"] == 1
    assert second.try_acquire_or_renew()
    lease = clients[2].get(Resources.LEASES, LOCK_NAME, NAMESPACE)
    assert lease["spec"]["holderIdentity"] == second.me
    assert lease["spec"]["leaseTransitions"] == 1


def test_a_leader_that_dies_holding_the_lease_is_waited_out_for_the_lease_duration(
    clients: list[Kube],
) -> None:
    dead, successor = elector(clients[0], "node-a", 1), elector(clients[1], "node-b", 2)
    assert dead.acquire(threading.Event())  # and never renews nor releases: the process died
    began = time.monotonic()
    stop = threading.Event()
    assert successor.acquire(stop)
    waited = time.monotonic() - began
    # Not before the lease ran out by the successor's own clock; then within a jittered retry period.
    assert SHORT.lease_duration <= waited <= SHORT.lease_duration + SHORT.retry_period * 2.2 + 1.0, waited
    assert holder(clients[2]) == successor.me


def test_a_leader_renews_while_it_leads_and_gives_up_when_it_cannot(
    server: ApiServer, clients: list[Kube]
) -> None:
    leader, rival = elector(clients[0], "node-a", 1), elector(clients[1], "node-b", 2)
    stop = threading.Event()
    assert leader.acquire(stop)
    outcome: list[bool] = []
    renewing = threading.Thread(target=lambda: outcome.append(leader.renew_until_lost(stop)), daemon=True)
    renewing.start()
    first_renew = clients[2].get(Resources.LEASES, LOCK_NAME, NAMESPACE)["spec"]["renewTime"]
    wait_for(
        lambda: clients[2].get(Resources.LEASES, LOCK_NAME, NAMESPACE)["spec"]["renewTime"],
        lambda renewed: renewed != first_renew,
        expected="the leader renewing its lease",
        timeout=5,
    )
    began = time.monotonic()
    while time.monotonic() - began < SHORT.lease_duration + 0.5:  # longer than a lease: still the leader
        assert not rival.try_acquire_or_renew()
        stop.wait(SHORT.retry_period)
    # The rival takes the lease by writing it directly, as a split-brained peer would: the leader's
    # renewals now fail (held by another, fresh), so it gives up after the renew deadline.
    lease = clients[1].get(Resources.LEASES, LOCK_NAME, NAMESPACE)
    lease["spec"]["holderIdentity"] = rival.me
    clients[1].replace(Resources.LEASES, lease)
    renewing.join(timeout=SHORT.renew_deadline + SHORT.lease_duration + 3)
    assert outcome == [False]
    assert not leader.leading
