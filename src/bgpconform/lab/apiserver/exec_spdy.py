"""`pods/exec` over SPDY/3.1, for kubectl before 1.30 (and client-go's SPDY executor).

The gcloud kubectl dispatcher picks the kubectl matching the server's minor version, so against a
lab that reports v1.27 the `kubectl` on PATH is 1.27, which execs only over SPDY. The subset served
is what the remotecommand protocol v4 uses: the client opens one stream per channel (`streamtype`
error, stdin, stdout, stderr, resize), the server answers each SYN_STREAM with a SYN_REPLY, writes
the output, FINs the streams and puts a `Status` on the error stream. Header blocks are zlib with
the SPDY/3 dictionary; flow control is not enforced (exec output here is small).

aiohttp only hands over the connection for WebSocket and TCP upgrades, so after the 101 this
installs itself as the request handler's payload parser, the hook aiohttp's own WebSocket uses.
"""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from typing import Any

from aiohttp import web

from bgpconform.lab.apiserver.exec_registry import ExecHandler, ExecResult
from bgpconform.lab.apiserver.exec_ws import exit_status, failure_status

PROTOCOL = "v4.channel.k8s.io"
SYN_STREAM, SYN_REPLY, RST_STREAM, PING, GOAWAY = 1, 2, 3, 6, 7
FLAG_FIN = 0x01
CHUNK = 16 * 1024

# The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1): length-prefixed header
# names, then a run of common values.
_NAMES = (
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
)
_VALUES = (
    b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    b"403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    b"Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    b"chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    b"text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(name)) + name.encode() for name in _NAMES) + _VALUES


def is_spdy_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/")


def offers_v4(request: web.Request) -> bool:
    offered = [
        v.strip()
        for value in request.headers.getall("X-Stream-Protocol-Version", [])
        for v in value.split(",")
    ]
    return PROTOCOL in offered


class _Stream:
    def __init__(self, stream_id: int, kind: str) -> None:
        self.id = stream_id
        self.kind = kind
        self.data = bytearray()
        self.closed = asyncio.Event()  # the client finished sending on it
        self.finished = False  # the server finished sending on it


class Session:
    """One SPDY connection: frames in through `feed_data`, frames out to the transport."""

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._transport: Any = transport
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._buffer = bytearray()
        self.streams: dict[str, _Stream] = {}
        self._by_id: dict[int, _Stream] = {}
        self.changed = asyncio.Event()
        self.gone = asyncio.Event()

    # aiohttp's payload-parser interface
    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._buffer.extend(data)
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if len(self._buffer) < 8 + length:
                break
            head, flags = bytes(self._buffer[:4]), self._buffer[4]
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            if head[0] & 0x80:
                self._control(int.from_bytes(head[2:4], "big"), flags, payload)
            else:
                self._data(int.from_bytes(head, "big") & 0x7FFFFFFF, flags, payload)
        return False, b""

    def feed_eof(self) -> None:
        self.gone.set()
        self.changed.set()

    def _control(self, kind: int, flags: int, payload: bytes) -> None:
        if kind == SYN_STREAM:
            stream_id = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            headers = self._headers(payload[10:])
            stream = _Stream(stream_id, headers.get("streamtype", ""))
            self.streams[stream.kind] = stream
            self._by_id[stream_id] = stream
            self._send_control(SYN_REPLY, 0, struct.pack(">I", stream_id) + self._encode_headers({}))
            if flags & FLAG_FIN:
                stream.closed.set()
            self.changed.set()
        elif kind == PING:
            self._send_control(PING, 0, payload)
        elif kind == RST_STREAM:
            reset = self._by_id.get(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF)
            if reset is not None:
                reset.closed.set()
        elif kind == GOAWAY:
            self.feed_eof()

    def _data(self, stream_id: int, flags: int, payload: bytes) -> None:
        stream = self._by_id.get(stream_id)
        if stream is None:
            return
        stream.data.extend(payload)
        if flags & FLAG_FIN:
            stream.closed.set()

    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        count = int.from_bytes(raw[:4], "big")
        position, headers = 4, {}
        for _ in range(count):
            size = int.from_bytes(raw[position : position + 4], "big")
            name = raw[position + 4 : position + 4 + size].decode()
            position += 4 + size
            size = int.from_bytes(raw[position : position + 4], "big")
            headers[name.lower()] = raw[position + 4 : position + 4 + size].decode()
            position += 4 + size
        return headers

    def _encode_headers(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            raw += (
                struct.pack(">I", len(name)) + name.encode() + struct.pack(">I", len(value)) + value.encode()
            )
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _send_control(self, kind: int, flags: int, payload: bytes) -> None:
        if not self._transport.is_closing():
            header = struct.pack(">HHB", 0x8003, kind, flags) + len(payload).to_bytes(3, "big")
            self._transport.write(header + payload)

    def send(self, kind: str, payload: bytes, fin: bool = True) -> None:
        stream = self.streams.get(kind)
        if stream is None or stream.finished or self._transport.is_closing():
            return
        stream.finished = fin
        chunks = [payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK)] or [b""]
        for index, chunk in enumerate(chunks):
            flags = FLAG_FIN if fin and index == len(chunks) - 1 else 0
            self._transport.write(
                struct.pack(">IB", stream.id, flags) + len(chunk).to_bytes(3, "big") + chunk
            )

    async def wait_for_streams(self, kinds: set[str], timeout: float) -> bool:
        async def arrived() -> None:
            while not kinds <= set(self.streams) and not self.gone.is_set():
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(arrived(), timeout)
        except TimeoutError:
            return False
        return kinds <= set(self.streams)

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()


async def serve(
    request: web.Request,
    argv: list[str],
    *,
    want_stdin: bool,
    want_stdout: bool,
    want_stderr: bool,
    tty: bool,
    handler: ExecHandler | None,
    missing: str,
) -> web.StreamResponse:
    """Upgrade to SPDY, run one exec session, close the connection."""
    response = web.StreamResponse(
        status=101,
        headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": PROTOCOL},
    )
    await response.prepare(request)
    transport = request.transport
    assert transport is not None
    session = Session(transport)
    protocol: Any = request.protocol
    protocol.keep_alive(False)
    protocol.set_parser(session)
    wanted = {"stdin": want_stdin, "stdout": want_stdout, "stderr": want_stderr and not tty, "resize": tty}
    expected = {"error"} | {kind for kind, wanted_kind in wanted.items() if wanted_kind}
    if not await session.wait_for_streams(expected, timeout=30):
        session.close()
        return response
    stdin: bytes | None = None
    if want_stdin:
        await session.streams["stdin"].closed.wait()
        stdin = bytes(session.streams["stdin"].data)
    if handler is None:
        status = failure_status(missing)
    else:
        loop = asyncio.get_running_loop()
        try:
            result: ExecResult = await loop.run_in_executor(None, handler, list(argv), stdin)
        except Exception as exc:  # the handler stands in for a runtime: report, do not crash the server
            status = failure_status(f"error executing command in container: {type(exc).__name__}: {exc}")
        else:
            session.send("stdout", result.stdout + (result.stderr if tty else b""))
            session.send("stderr", result.stderr)
            status = exit_status(argv, result)
    for kind in ("stdout", "stderr"):
        if kind in session.streams:
            session.send(kind, b"")
    session.send("error", json.dumps(status).encode())
    session.close()
    return response
