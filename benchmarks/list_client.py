"""Lists every pod N times from a process of its own and prints each duration as JSON: the API's answer
(a GET on a kept connection, from the request to the last byte of the body: SIG Scalability's "API
call latency", kubernetes/community sig-scalability/slos/api_call_latency.md) and the harness's API
client (the same, decoded into objects). Nothing of the lab's runs in this interpreter, as on a rack.

Run by `scale_probe.py`: `python -m benchmarks.list_client '{"host": ..., "token": ..., "ca": ...}' N`.
"""

from __future__ import annotations

import json
import sys
import time

import kubernetes.client
import requests

from bgpconform.kubeapi.client import Kube
from bgpconform.kubeapi.port import Resources


def main() -> None:
    given, lists = json.loads(sys.argv[1]), int(sys.argv[2])
    configuration = kubernetes.client.Configuration()
    configuration.host = given["host"]
    if given.get("token"):
        configuration.api_key = {"authorization": given["token"]}
    configuration.ssl_ca_cert = given.get("ca")
    configuration.verify_ssl = bool(given.get("ca"))
    kube = Kube(kubernetes.client.ApiClient(configuration))
    kube.listing(Resources.PODS)  # the connection is made once, as a long-lived client's is
    seconds = []
    for _ in range(lists):
        start = time.perf_counter()
        listed = kube.listing(Resources.PODS)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "answers": _answers(given, lists), "pods": len(listed["items"])}))


def _answers(given: dict[str, str | None], lists: int) -> list[float]:
    """The API's answer alone: the body read to its last byte, nothing decoded."""
    session = requests.Session()
    if given.get("token"):
        token = str(given["token"])
        session.headers["Authorization"] = token if token.startswith("Bearer") else f"Bearer {token}"
    url = f"{given['host']}/api/v1/pods"
    verify: str | bool = given.get("ca") or False
    session.get(url, verify=verify, timeout=30).raise_for_status()  # connect once, as for the client
    seconds = []
    for _ in range(lists):
        start = time.perf_counter()
        answer = session.get(url, headers={"Accept": "application/json"}, verify=verify, timeout=30)
        answer.raise_for_status()
        seconds.append(time.perf_counter() - start)
    return seconds


if __name__ == "__main__":
    main()
