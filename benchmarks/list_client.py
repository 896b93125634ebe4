"""Lists every pod N times through the harness's API client from a process of its own and prints each
duration as JSON: the API's list latency as a client sees it, without the lab's emulated agents in the
same interpreter (on a rack the harness and the API server are never in one process).

Run by `scale_probe.py`: `python -m benchmarks.list_client '{"host": ..., "token": ..., "ca": ...}' N`.
"""

from __future__ import annotations

import json
import sys
import time

import kubernetes.client

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
    print(json.dumps({"seconds": seconds, "pods": len(listed["items"])}))


if __name__ == "__main__":
    main()
