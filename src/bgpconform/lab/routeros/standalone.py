"""The RouterOS API server on its own, without FRR: the process inside the CHR stand-in container.

`python -m bgpconform.lab.routeros.standalone --version 7.8 --port 8728 --host 0.0.0.0` serves one
emulated RouterOS of that version until SIGTERM or SIGINT. The login is a fresh CHR's (`admin`, empty
password) unless BGPCONFORM_ROUTER_USER and BGPCONFORM_ROUTER_PASSWORD say otherwise. There is no BGP
speaker behind it (`NoSpeakerBackend`): a container runtime, a network and a harness's commands can be
checked against it where no real CHR can boot. It prints one line once it listens, for container logs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from bgpconform.errors import HarnessError
from bgpconform.lab.routeros.no_speaker import NoSpeakerBackend
from bgpconform.lab.routeros.router import EmulatedRouter
from bgpconform.lab.routeros.server import RouterOsApiServer
from bgpconform.routers.routeros.dialect import Dialect

USER_ENV = "BGPCONFORM_ROUTER_USER"
PASSWORD_ENV = "BGPCONFORM_ROUTER_PASSWORD"
BOARD = "bgpconform CHR stand-in"
DEFAULT_IDENTITY = "MikroTik"  # a fresh CHR's /system/identity


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bgpconform.lab.routeros.standalone",
        description="Serve an emulated RouterOS API without a BGP speaker (the CHR stand-in).",
    )
    parser.add_argument("--version", default="7.8", help="the RouterOS version to emulate (default 7.8)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=int, default=8728, help="the API port (default 8728)")
    parser.add_argument("--identity", default=DEFAULT_IDENTITY, help="what /system/identity prints")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        dialect = Dialect.of(args.version)
    except HarnessError as exc:
        print(f"bgpconform CHR stand-in: {exc}", file=sys.stderr)
        return 2
    router = EmulatedRouter(dialect, NoSpeakerBackend(), identity=args.identity, board=BOARD)
    server = RouterOsApiServer(
        router,
        username=os.environ.get(USER_ENV, "admin"),
        password=os.environ.get(PASSWORD_ENV, ""),
        host=args.host,
        port=args.port,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # As PID 1 in a container, a signal without a handler is ignored: these make `docker stop` quick.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        server.start()
    except HarnessError as exc:
        print(f"bgpconform CHR stand-in: {exc}", file=sys.stderr)
        return 1
    print(
        f"{BOARD}: RouterOS {dialect.version.number} API listening on {server.host}:{server.port}",
        flush=True,
    )
    stop.wait()
    server.stop()
    print(f"{BOARD}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
