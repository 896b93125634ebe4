"""Prints the lab API server's throughput and memory on this machine.

Figures, not asserts. Targets: a list of 1,000 pods under 50 ms, the store under 200 MB with 10,000
objects. Client and server share one process (and its GIL), as the harness and the lab do.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bgpconform.lab.apiserver.server import ApiServer


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": "bench", "k8s-app": "cilium", "pod-template-hash": "768959858c"},
        },
        "spec": {
            "nodeName": "k3s-worker-node-01",
            "containers": [
                {
                    "name": "cilium-agent",
                    "image": "quay.io/cilium/cilium:v1.13.4",
                    "command": ["cilium-agent"],
                    "args": ["--config-dir=/tmp/cilium/config-map"],
                    "ports": [{"containerPort": 9962, "name": "prometheus"}],
                    "env": [
                        {"name": "K8S_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
                    ],
                }
            ],
        },
    }


class Client:
    """Keep-alive HTTP/1.1, the way client libraries talk to the API."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=60)

    def request(self, method: str, path: str, body: Any = None, accept: str = "application/json") -> bytes:
        headers = {"Accept": accept, "Content-Type": "application/json"}
        payload = json.dumps(body).encode() if body is not None else None
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return data


def timed(action: Any, count: int) -> list[float]:
    durations = []
    for _ in range(count):
        began = time.perf_counter()
        action()
        durations.append(time.perf_counter() - began)
    return durations


def report(label: str, durations: list[float]) -> None:
    ordered = sorted(durations)
    p95 = ordered[int(len(ordered) * 0.95) - 1] if len(ordered) >= 20 else ordered[-1]
    rate = len(durations) / sum(durations)
    median = statistics.median(durations) * 1000
    print(f"{label:<34} {rate:9.0f} req/s   median {median:7.2f} ms   p95 {p95 * 1000:7.2f} ms")


async def fan_out(url: str, watchers: int, events: int) -> tuple[float, float]:
    """Seconds from the first write until every watcher saw every event, and deliveries per second."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        async with session.get(f"{url}/api/v1/namespaces/default/configmaps") as response:
            start_rv = (await response.json())["metadata"]["resourceVersion"]
        ready = asyncio.Event()
        opened = 0

        async def watch() -> float:
            nonlocal opened
            path = f"{url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={start_rv}"
            seen = 0
            async with session.get(path) as stream:
                opened += 1
                if opened == watchers:
                    ready.set()
                async for _line in stream.content:
                    seen += 1
                    if seen == events:
                        return time.perf_counter()
            raise RuntimeError("watch ended early")

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        await asyncio.wait_for(ready.wait(), 30)
        began = time.perf_counter()
        for index in range(events):
            body = {"metadata": {"name": f"fan-{index}"}, "data": {"index": str(index)}}
            async with session.post(f"{url}/api/v1/namespaces/default/configmaps", json=body) as response:
                response.raise_for_status()
        finished = await asyncio.gather(*tasks)
        elapsed = max(finished) - began
        return elapsed, watchers * events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ApiServer(Path(tmp))
        server.start()
        try:
            gc.collect()
            baseline = rss_mb()
            client = Client(server.url)
            pods = "/api/v1/namespaces/default/pods"
            names = iter(range(args.objects))
            creates = timed(lambda: client.request("POST", pods, pod(f"pod-{next(names):05d}")), args.pods)
            report(f"create pod (to {args.pods})", creates)
            report("get pod", timed(lambda: client.request("GET", f"{pods}/pod-00500"), args.rounds * 20))
            report(f"list {args.pods} pods (JSON)", timed(lambda: client.request("GET", pods), args.rounds))
            table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
            report(
                f"list {args.pods} pods (Table)", timed(lambda: client.request("GET", pods, accept=table), 10)
            )
            report(
                "list pods by label (none match)",
                timed(lambda: client.request("GET", f"{pods}?labelSelector=app%3Dnone"), args.rounds),
            )
            elapsed, rate = asyncio.run(fan_out(server.url, args.watchers, args.events))
            print(
                f"watch fan-out: {args.events} events to {args.watchers} watchers in {elapsed * 1000:.0f} ms "
                f"({rate:,.0f} deliveries/s)"
            )
            more = args.objects - args.pods - args.events
            began = time.perf_counter()
            for _ in range(max(more, 0)):
                client.request("POST", pods, pod(f"pod-{next(names):05d}"))
            print(f"created {max(more, 0)} more pods in {time.perf_counter() - began:.1f} s")
            client.request("GET", pods)  # every object now also holds its serialized JSON, as in use
            gc.collect()
            count = server.store.count(("", "pods")) + server.store.count(("", "configmaps"))
            print(
                f"memory with {count} objects: {rss_mb() - baseline:.0f} MB over a {baseline:.0f} MB "
                f"baseline (process RSS {rss_mb():.0f} MB)"
            )
            report(
                f"list {server.store.count(('', 'pods'))} pods (JSON)",
                timed(lambda: client.request("GET", pods), 10),
            )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
