"""Steps of the reachability stage: the outside client, the LB IP, and where requests entered."""

from __future__ import annotations

import re
import secrets
from ipaddress import IPv4Address

from pytest_bdd import given, parsers, then, when

from bgpconform.disruption.entry import entry_node
from bgpconform.evidence import Evidence
from bgpconform.expect import expect
from bgpconform.stage import Stage
from bgpconform.targets.port import HttpAnswer
from bgpconform.waiting import WaitTimeout, wait_for
from bgpconform.walkthrough.machine import StageMachine

WELCOME = "<title>Welcome to nginx!</title>"
# Source ports come from a random block per scenario: a fixed block would still be in TIME_WAIT on a
# client that ran the suite a minute ago (a real client keeps its sockets; a lab client is new each run).
# The block stays below Linux's ephemeral range (32768-60999 by default), where the client's other
# connections take their ports: a pinned port one of them holds fails with "Address already in use".
SOURCE_PORTS = range(20000, 32768)
# nginx's default `combined` access log line, as `kubectl logs` shows it for the stock image.
_COMBINED = re.compile(r'^(\d+\.\d+\.\d+\.\d+) - \S+ \[[^\]]+\] "(\S+) (\S+) [^"]*" (\d{3}) ')


@given("the nginx service has an external IP announced to the router")
def service_announced(walkthrough: StageMachine, evidence: Evidence) -> None:
    walkthrough.bring_to(Stage.LB_IPAM)


@when("the outside client requests the service's external IP and port", target_fixture="answers")
def one_request(walkthrough: StageMachine, evidence: Evidence) -> list[HttpAnswer]:
    return _first_answer(walkthrough, evidence)


def _first_answer(walkthrough: StageMachine, evidence: Evidence) -> list[HttpAnswer]:
    """Retries until the first success (the datapath converges after the route), then hands the
    answer to the Then step; a client that never succeeds hands over its last answer to be judged."""
    url = walkthrough.service_url()
    client = walkthrough.target.client
    timeout = walkthrough.topology.waits.http
    answers: list[HttpAnswer] = []

    def request() -> HttpAnswer:
        answers.append(client.http_get(url, timeout=min(3.0, timeout)))
        return answers[-1]

    try:
        waited = wait_for(request, lambda answer: answer.ok, expected=f"HTTP 200 from {url}", timeout=timeout)
    except WaitTimeout:
        evidence.text(
            f"curl {url} ({len(answers)} tries in {timeout:g} s, none answered)", answers[-1].summary()
        )
        return answers[-1:]
    walkthrough.evidence.timing(
        Stage.LB_IPAM.label, "route at router -> first successful request", waited.elapsed
    )
    evidence.text(f"curl {url}", waited.value.body)
    return [waited.value]


@when(
    parsers.parse("the outside client sends {count:d} requests from different source ports"),
    target_fixture="answers",
)
def many_requests(walkthrough: StageMachine, evidence: Evidence, count: int) -> list[HttpAnswer]:
    """After the first answer (convergence, as for one request), every source port counts."""
    first = _first_answer(walkthrough, evidence)
    if not first[0].ok:
        return first
    url = walkthrough.service_url()
    client = walkthrough.target.client
    timeout = min(3.0, walkthrough.topology.waits.http)
    first_port = SOURCE_PORTS.start + secrets.randbelow(len(SOURCE_PORTS) - count)
    answers = [client.http_get(url, timeout=timeout, local_port=first_port + i) for i in range(count)]
    evidence.text("requests", "\n".join(a.summary() for a in answers))
    return answers


@then("it gets the nginx welcome page")
@then("every request gets the nginx welcome page")
def welcome_page(answers: list[HttpAnswer]) -> None:
    failed = [a.summary() for a in answers if not (a.ok and WELCOME in a.body)]
    expect(
        not failed,
        f"every request answered with the nginx welcome page ({WELCOME})",
        f"{len(failed)} of {len(answers)} without it:\n    " + "\n    ".join(failed),
    )


def _entry_nodes(walkthrough: StageMachine, client: IPv4Address) -> dict[str, int]:
    """Where each request from the client entered, read from nginx's access log (`kubectl logs`).

    A request entering on the backend's own node reaches nginx with the client's address; one entering
    elsewhere is source-NATed to that node's address (Cilium's SNAT mode for externalTrafficPolicy
    Cluster), so the remote address names the entry node either way.
    """
    by_address = {node.address: node.name for node in walkthrough.topology.nodes}
    entered: dict[str, int] = {}
    for backend_node, log in walkthrough.nginx_logs():
        for line in log.splitlines():
            found = _COMBINED.match(line)
            if not found:
                continue
            node = entry_node(IPv4Address(found.group(1)), client, backend_node, by_address)
            if node is not None:
                entered[node] = entered.get(node, 0) + 1
    return entered


@then("the requests entered through more than one labelled node when the router does ECMP")
def spread(walkthrough: StageMachine, evidence: Evidence, answers: list[HttpAnswer]) -> None:
    client = walkthrough.target.client.address
    entered = _entry_nodes(walkthrough, client)
    evidence.json("requests per entry node (from nginx's access log)", entered)
    peering = {n.name for n in walkthrough.topology.bgp_nodes}
    expect(
        set(entered) <= peering, f"requests entering only through peering nodes {sorted(peering)}", entered
    )
    if walkthrough.topology.router.ecmp and len(peering) > 1:
        expect(
            len(entered) > 1, "requests entering through more than one node (the router does ECMP)", entered
        )
    else:
        expect(
            len(entered) == 1, "every request entering through one node (the router has one path)", entered
        )
