"""The API server's own process: `python -m bgpconform.lab.apiserver.process_main FD SETTINGS`.

Started by `process.ApiServerProcess` with one end of a socket pair as FD. It serves until told to
stop or until that pair closes, which is also what happens when the lab's process dies however it
dies: the API server never outlives its lab. It runs in a session of its own, so a Ctrl-C meant for
the run reaches the run, whose teardown stops it in order.
"""

from __future__ import annotations

import json
import logging
import sys
from multiprocessing.connection import Connection
from pathlib import Path

from bgpconform.lab.apiserver.channel import Channel
from bgpconform.lab.apiserver.exec_registry import ExecRegistry, ExecResult
from bgpconform.lab.apiserver.operations import PODS
from bgpconform.lab.apiserver.server import ApiServer
from bgpconform.lab.apiserver.util import parse_timestamp

EXEC_DEADLINE = 600.0  # a handler stands in for a process; the lab's longest runs a CLI for seconds


class ForwardedExecs(ExecRegistry):
    """The kubelets' exec handlers, mirrored by key; running one asks the lab's process to run it."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    def mirror(self, namespace: str, pod: str, container: str) -> None:
        def forwarded(argv: list[str], stdin: bytes | None) -> ExecResult:
            result: ExecResult = self._channel.call(
                "exec", namespace, pod, container, argv, stdin, timeout=EXEC_DEADLINE
            )
            return result

        self.register(namespace, pod, container, forwarded)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} FD SETTINGS_JSON (started by the lab, not by hand)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = json.loads(argv[2])
    channel = Channel(Connection(int(argv[1])), "lab API server")
    execs = ForwardedExecs(channel)
    server = ApiServer(
        Path(settings["run_dir"]),
        cluster_name=settings["cluster_name"],
        k3s_version=settings["k3s_version"],
        exec_handlers=execs,
    )
    try:
        server.start()
    except Exception as exc:
        channel.send("failed", str(exc))
        return 1

    def log_line(namespace: str, pod: str, container: str, line: str, at: str) -> None:
        """A line that arrives after its pod was deleted goes with the pod, as its log file would."""
        with server.store.lock:  # the pod's removal, then its logs' clearing, come after or before
            if server.store.get(PODS, namespace, pod) is not None:
                server.logs.append(namespace, pod, container, line, parse_timestamp(at))

    def stop() -> None:
        server.stop()  # the reply follows; the lab then closes the pair, which ends `serve`

    channel.send("ready", server.url)
    try:
        channel.serve(
            {
                "log": log_line,
                "exec-register": execs.mirror,
                "exec-unregister": execs.unregister,
                "dump": lambda path: server.dump(Path(path)),
                "stop": stop,
            },
            # Stopping waits for open exec sessions and a dump may take a second: the receiver
            # meanwhile goes on reading the exec replies and log lines those wait for.
            threaded=("stop", "dump"),
        )
    finally:
        server.stop()  # idempotent; here when the lab's process went away without a word
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
