"""`pods/exec` over WebSocket, in the channel protocol the kubelet speaks (v5 and v4).

Every binary frame starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the error channel
(a `Status` with the exit code, what kubectl and the Python client's `returncode` read), 4 resize.
v5 adds 255 + channel to close a stream, which is how a client ends stdin. v4 has no such signal:
there an empty stdin frame, or the client closing, ends stdin. SPDY is not served; kubectl 1.32
uses WebSockets first.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from bgpconform.lab.apiserver.exec_registry import ExecHandler, ExecResult

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
CHUNK = 32 * 1024


def offered_protocols(request: web.Request) -> list[str]:
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def exit_status(argv: list[str], result: ExecResult) -> dict[str, Any]:
    if result.exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command {_go_list(argv)}, "
            f"exit code {result.exit_code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(result.exit_code)}]},
    }


def failure_status(message: str) -> dict[str, Any]:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def _go_list(argv: list[str]) -> str:
    return "[" + " ".join(argv) + "]"


async def _read_stdin(ws: web.WebSocketResponse, v5: bool) -> bytes:
    chunks: list[bytes] = []
    async for message in ws:
        if message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
            data = message.data if isinstance(message.data, bytes) else str(message.data).encode()
            if not data:
                continue
            channel = data[0]
            if channel == STDIN:
                if len(data) == 1 and not v5:
                    break
                chunks.append(data[1:])
            elif channel == CLOSE and v5 and data[1:2] == bytes([STDIN]):
                break
        else:
            break
    return b"".join(chunks)


async def _send(ws: web.WebSocketResponse, channel: int, payload: bytes) -> None:
    for start in range(0, len(payload), CHUNK):
        await ws.send_bytes(bytes([channel]) + payload[start : start + CHUNK])


async def serve(
    request: web.Request,
    argv: list[str],
    *,
    want_stdin: bool,
    tty: bool,
    handler: ExecHandler | None,
    missing: str,
    sessions: set[web.WebSocketResponse],
) -> web.WebSocketResponse:
    """Run one exec session; `missing` is the error when no handler answers for the container."""
    ws = web.WebSocketResponse(protocols=PROTOCOLS, autoping=True)
    await ws.prepare(request)
    sessions.add(ws)
    try:
        v5 = ws.ws_protocol == V5
        stdin = await _read_stdin(ws, v5) if want_stdin else None
        if handler is None:
            status = failure_status(missing)
        else:
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(None, handler, list(argv), stdin)
            except Exception as exc:  # the handler stands in for a runtime: report, do not crash the server
                status = failure_status(f"error executing command in container: {type(exc).__name__}: {exc}")
            else:
                if tty:
                    await _send(ws, STDOUT, result.stdout + result.stderr)
                else:
                    await _send(ws, STDOUT, result.stdout)
                    await _send(ws, STDERR, result.stderr)
                status = exit_status(argv, result)
        if not ws.closed:
            await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
            await ws.close()
    except (ConnectionResetError, asyncio.CancelledError):
        if not ws.closed:
            await ws.close()
        raise
    finally:
        sessions.discard(ws)
    return ws
