"""A static HTTP server for lab tests that never resolves names.

`python -m http.server` looks up its own host name at bind time; inside a lab namespace that lookup
has nowhere to go and stalls start-up, so tests serve through a plain TCPServer instead.
"""

from __future__ import annotations

import functools
import http.server
import socketserver
import sys


def main() -> None:
    address, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    socketserver.TCPServer.allow_reuse_address = True
    with socketserver.TCPServer((address, port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
