"""Pod logs and exec, with content from the registries the emulated components fill."""

from __future__ import annotations

import asyncio
import struct
import threading
import zlib
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream

from bgpconform.lab.apiserver import exec_spdy
from bgpconform.lab.apiserver.exec_registry import ExecResult
from bgpconform.lab.apiserver.server import ApiServer
from tests.apiserver.conftest import CoreApi, Watch, pod_body, status_of


def exec_command(core: CoreApi, name: str, command: list[str], **kwargs: Any) -> Any:
    session = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        "default",
        command=command,
        stderr=True,
        stdout=True,
        _preload_content=False,
        **kwargs,
    )
    session.run_forever(timeout=10)
    return session


def exec_with_stdin(core: CoreApi, name: str, command: list[str], stdin: str) -> Any:
    """An exec that sends `stdin` and closes it, then runs to the end."""
    session = stream(
        core.connect_get_namespaced_pod_exec,
        name,
        "default",
        command=command,
        stdin=True,
        stdout=True,
        stderr=True,
        _preload_content=False,
    )
    session.write_stdin(stdin)
    session.close_channel(0)
    session.run_forever(timeout=10)
    return session


def _finish(session: Any) -> None:
    """Release the client socket: after a server-initiated close, websocket-client's close() skips it."""
    session.close()
    session.sock.shutdown()


def test_logs_come_from_the_registry(server: ApiServer, core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("agent", ("cilium-agent",)))
    for line in ("level=info msg=starting", "level=info msg=ready"):
        server.logs.append("default", "agent", "cilium-agent", line)
    assert (
        core.read_namespaced_pod_log("agent", "default") == "level=info msg=starting\nlevel=info msg=ready\n"
    )
    assert core.read_namespaced_pod_log("agent", "default", tail_lines=1) == "level=info msg=ready\n"
    stamped = core.read_namespaced_pod_log("agent", "default", timestamps=True, tail_lines=1)
    assert stamped.endswith("Z level=info msg=ready\n")
    assert stamped[:4].isdigit()


def test_log_container_must_be_named_when_there_are_several(core: CoreApi) -> None:
    body = pod_body("multi", ("cilium-agent", "sidecar"))
    body["spec"]["initContainers"] = [{"name": "config", "image": "x"}]
    core.create_namespaced_pod("default", body)
    with pytest.raises(client.ApiException) as raised:
        core.read_namespaced_pod_log("multi", "default")
    assert raised.value.status == 400
    assert status_of(raised.value)["message"] == (
        "a container name must be specified for pod multi, choose one of: [cilium-agent sidecar] "
        "or one of the init containers: [config]"
    )
    with pytest.raises(client.ApiException) as wrong:
        core.read_namespaced_pod_log("multi", "default", container="nope")
    assert status_of(wrong.value)["message"] == "container nope is not valid for pod multi"
    assert core.read_namespaced_pod_log("multi", "default", container="config") == ""


def test_follow_streams_new_lines_until_the_pod_goes(server: ApiServer, core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("op", ("cilium-operator",)))
    server.logs.append("default", "op", "cilium-operator", "first")
    lines = Watch().stream(core.read_namespaced_pod_log, name="op", namespace="default", follow=True)
    assert next(lines) == "first"
    server.logs.append("default", "op", "cilium-operator", "second")
    assert next(lines) == "second"
    core.delete_namespaced_pod("op", "default")
    assert list(lines) == []


def test_logs_go_with_the_pod(server: ApiServer, core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    server.logs.append("default", "p", "app", "old life")
    core.delete_namespaced_pod("p", "default")
    core.create_namespaced_pod("default", pod_body("p"))
    assert core.read_namespaced_pod_log("p", "default") == ""


def test_exec_runs_the_registered_handler(server: ApiServer, core: CoreApi) -> None:
    calls: list[tuple[list[str], bytes | None]] = []

    def handler(argv: list[str], stdin: bytes | None) -> ExecResult:
        calls.append((argv, stdin))
        return ExecResult(stdout=b'[{"peer-address":"192.168.1.1"}]\n', stderr=b"warning\n", exit_code=0)

    core.create_namespaced_pod("default", pod_body("cilium-x", ("cilium-agent",)))
    server.exec_handlers.register("default", "cilium-x", "cilium-agent", handler)
    command = ["cilium", "bgp", "peers", "-o", "json"]
    session = exec_command(core, "cilium-x", command, container="cilium-agent")
    assert session.read_stdout() == '[{"peer-address":"192.168.1.1"}]\n'
    assert session.read_stderr() == "warning\n"
    assert session.returncode == 0
    _finish(session)
    assert calls == [(["cilium", "bgp", "peers", "-o", "json"], None)]


def test_exec_reports_the_exit_code(server: ApiServer, core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    server.exec_handlers.register("default", "p", "app", lambda argv, stdin: ExecResult(b"", b"nope\n", 3))
    session = exec_command(core, "p", ["false"])
    assert session.read_stderr() == "nope\n"
    assert session.returncode == 3
    _finish(session)


def test_exec_stdin_is_delivered_when_closed(server: ApiServer, core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    server.exec_handlers.register(
        "default", "p", "app", lambda argv, stdin: ExecResult(stdout=(stdin or b"")[::-1])
    )
    session = exec_with_stdin(core, "p", ["rev"], "hello")
    assert session.read_stdout() == "olleh"
    assert session.returncode == 0
    _finish(session)


def test_exec_without_a_handler_fails_cleanly(core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    session = exec_command(core, "p", ["ls"])
    error = session.read_channel(3)
    _finish(session)
    assert '"status": "Failure"' in error
    assert "no exec handler is registered" in error


def test_exec_handlers_go_with_the_pod(server: ApiServer, core: CoreApi) -> None:
    ran = threading.Event()

    def handler(argv: list[str], stdin: bytes | None) -> ExecResult:
        ran.set()
        return ExecResult()

    core.create_namespaced_pod("default", pod_body("p"))
    server.exec_handlers.register("default", "p", "app", handler)
    core.delete_namespaced_pod("p", "default")
    assert server.exec_handlers.lookup("default", "p", "app") is None
    assert not ran.is_set()


def test_exec_on_a_missing_pod_is_404(core: CoreApi) -> None:
    with pytest.raises(client.ApiException) as raised:
        stream(core.connect_get_namespaced_pod_exec, "ghost", "default", command=["ls"], stdout=True)
    assert "404" in str(raised.value)


class _Transport:
    """Collects what a SPDY session writes."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.extend(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _frames(data: bytes) -> list[tuple[bool, int, int, bytes]]:
    """(control, type or stream id, flags, payload) for each frame."""
    frames = []
    while data:
        length = int.from_bytes(data[5:8], "big")
        control = bool(data[0] & 0x80)
        ident = int.from_bytes(data[2:4], "big") if control else int.from_bytes(data[:4], "big")
        frames.append((control, ident, data[4], data[8 : 8 + length]))
        data = data[8 + length :]
    return frames


def test_spdy_session_frames() -> None:
    async def scenario() -> tuple[bytes, dict[str, bytes]]:
        transport = _Transport()
        session = exec_spdy.Session(transport)  # type: ignore[arg-type]
        client = zlib.compressobj(zdict=exec_spdy.DICTIONARY)
        for stream_id, kind in ((1, "error"), (3, "stdin"), (5, "stdout")):
            name, value = b"streamtype", kind.encode()
            block = (
                struct.pack(">I", 1)
                + struct.pack(">I", len(name))
                + name
                + struct.pack(">I", len(value))
                + value
            )
            compressed = client.compress(block) + client.flush(zlib.Z_SYNC_FLUSH)
            payload = struct.pack(">IIH", stream_id, 0, 0) + compressed
            session.feed_data(struct.pack(">HHB", 0x8003, 1, 0) + len(payload).to_bytes(3, "big") + payload)
        session.feed_data(struct.pack(">IB", 3, 1) + (5).to_bytes(3, "big") + b"hello")
        session.feed_data(struct.pack(">HHB", 0x8003, 6, 0) + (4).to_bytes(3, "big") + struct.pack(">I", 7))
        assert await session.wait_for_streams({"error", "stdin", "stdout"}, timeout=5)
        await session.streams["stdin"].closed.wait()
        session.send("stdout", b"out")
        return bytes(transport.written), {k: bytes(s.data) for k, s in session.streams.items()}

    written, received = asyncio.run(scenario())
    assert received == {"error": b"", "stdin": b"hello", "stdout": b""}
    frames = _frames(written)
    replies = [f for f in frames if f[0] and f[1] == 2]
    assert [int.from_bytes(f[3][:4], "big") for f in replies] == [1, 3, 5]
    assert (True, 6, 0, struct.pack(">I", 7)) in frames
    assert frames[-1] == (False, 5, 1, b"out")
