"""The API server in a process of its own: logs and exec cross to it, nothing outlives the lab."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import psutil
import pytest
import yaml
from kubernetes import client

from bgpconform.errors import LabError
from bgpconform.lab.apiserver.channel import Channel
from bgpconform.lab.apiserver.exec_registry import ExecResult
from bgpconform.lab.apiserver.process import ApiServerProcess
from bgpconform.waiting import wait_for
from tests.apiserver.conftest import CoreApi, Watch, new_client_from_config, pod_body
from tests.apiserver.test_logs_exec import exec_command, exec_with_stdin

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ApiServerProcess]:
    server = ApiServerProcess(tmp_path / "api", cluster_name="lab", k3s_version="v1.27.3+k3s1")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def core(served: ApiServerProcess) -> Iterator[CoreApi]:
    api = new_client_from_config(config_file=str(served.kubeconfig_path))
    yield client.CoreV1Api(api)
    api.close()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_server_runs_in_another_process_and_serves_the_lab(
    served: ApiServerProcess, core: CoreApi
) -> None:
    assert served.pid is not None
    assert served.pid != os.getpid()
    assert psutil.Process(served.pid).ppid() == os.getpid()
    names = [n.metadata.name for n in core.list_namespace().items]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert served.url.startswith("http://127.0.0.1:")


def test_a_line_a_container_writes_is_served_with_the_time_it_was_written(
    served: ApiServerProcess, core: CoreApi
) -> None:
    core.create_namespaced_pod("default", pod_body("agent", ("cilium-agent",)))
    assert served.logs is not None
    served.logs.append("default", "agent", "cilium-agent", "level=info msg=starting")
    served.logs.append("default", "agent", "cilium-agent", "level=info msg=ready")
    logged = wait_for(
        lambda: core.read_namespaced_pod_log("agent", "default", timestamps=True),
        lambda text: text.count("\n") == 2,
        expected="the two lines written, in order",
        timeout=10,
    ).value
    first, second = logged.splitlines()
    assert first.endswith("Z level=info msg=starting")
    assert second.endswith("Z level=info msg=ready")
    assert first.split()[0] <= second.split()[0]


def test_exec_runs_the_handler_in_the_labs_process(served: ApiServerProcess, core: CoreApi) -> None:
    ran_in: list[tuple[int, list[str], bytes | None]] = []

    def handler(argv: list[str], stdin: bytes | None) -> ExecResult:
        ran_in.append((os.getpid(), argv, stdin))
        return ExecResult(stdout=b"peers\n", stderr=b"warning\n", exit_code=3)

    core.create_namespaced_pod("default", pod_body("cilium-x", ("cilium-agent",)))
    assert served.exec_handlers is not None
    served.exec_handlers.register("default", "cilium-x", "cilium-agent", handler)
    # At once: `register` returned only once the server's process knew the container.
    session = exec_command(core, "cilium-x", ["cilium", "bgp", "peers"])
    assert session.read_stdout() == "peers\n"
    assert session.read_stderr() == "warning\n"
    assert session.returncode == 3
    session.close()
    assert ran_in == [(os.getpid(), ["cilium", "bgp", "peers"], None)]


def test_exec_stdin_crosses_both_processes(served: ApiServerProcess, core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    assert served.exec_handlers is not None
    served.exec_handlers.register(
        "default", "p", "app", lambda argv, stdin: ExecResult(stdout=(stdin or b"")[::-1])
    )
    session = exec_with_stdin(core, "p", ["rev"], "hello")
    assert session.read_stdout() == "olleh"
    session.close()


def test_exec_after_the_handler_went_fails_cleanly(served: ApiServerProcess, core: CoreApi) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    assert served.exec_handlers is not None
    served.exec_handlers.register("default", "p", "app", lambda argv, stdin: ExecResult(stdout=b"here"))
    served.exec_handlers.unregister("default", "p")
    session = exec_command(core, "p", ["ls"])
    error = session.read_channel(3)
    session.close()
    assert '"status": "Failure"' in error
    assert "no exec handler is registered" in error


def test_a_handler_that_fails_is_reported_not_fatal(served: ApiServerProcess, core: CoreApi) -> None:
    def broken(argv: list[str], stdin: bytes | None) -> ExecResult:
        raise RuntimeError("the runtime lost the container")

    core.create_namespaced_pod("default", pod_body("p"))
    assert served.exec_handlers is not None
    served.exec_handlers.register("default", "p", "app", broken)
    session = exec_command(core, "p", ["ls"])
    error = session.read_channel(3)
    session.close()
    assert "the runtime lost the container" in error
    assert core.read_namespace("default").metadata.name == "default"  # still serving


def test_the_dump_holds_every_object(served: ApiServerProcess, core: CoreApi, tmp_path: Path) -> None:
    core.create_namespaced_pod("default", pod_body("dumped"))
    path = tmp_path / "objects.yaml"
    served.dump(path)
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert {"Pod", "Namespace", "Service"} <= {d["kind"] for d in documents}
    assert "dumped" in [d["metadata"]["name"] for d in documents if d["kind"] == "Pod"]


def test_stopping_ends_watches_and_the_process(tmp_path: Path) -> None:
    server = ApiServerProcess(tmp_path / "api")
    server.start()
    pid = server.pid
    assert pid is not None
    api = new_client_from_config(config_file=str(server.kubeconfig_path))
    core = client.CoreV1Api(api)
    events: list[str] = []

    def watch() -> None:
        for event in Watch().stream(core.list_namespace, timeout_seconds=120):
            events.append(event["type"])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_for(lambda: len(events), lambda n: n >= 4, expected="the four namespaces' ADDED events", timeout=10)
    server.stop()
    watcher.join(timeout=30)
    api.close()
    assert not watcher.is_alive(), "a watch outlived the server"
    assert _gone(pid)
    assert not server.running
    server.stop()  # idempotent


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    (tmp_path / "api" / "kubeconfig").mkdir(parents=True)  # where it must write its kubeconfig
    server = ApiServerProcess(tmp_path / "api")
    with pytest.raises(LabError, match=r"did not start: .*kubeconfig"):
        server.start()
    assert not server.running


_LAB = textwrap.dedent(
    """
    import signal, sys, urllib.request
    from pathlib import Path
    from bgpconform.lab.apiserver.process import ApiServerProcess
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    server = ApiServerProcess(Path(sys.argv[1]))
    server.start()
    print(server.pid, flush=True)
    signal.sigwait({signal.SIGINT})
    with urllib.request.urlopen(server.url + "/api/v1/namespaces/default", timeout=10) as answer:
        print("answering after the Ctrl-C:", answer.status, flush=True)
    server.stop()
    print("stopped", flush=True)
    """
)


def _lab(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    """A lab's process of its own, leading its own process group as a run in a terminal does."""
    lab = subprocess.Popen(
        [sys.executable, "-c", _LAB, str(tmp_path / "api")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert lab.stdout is not None
    return lab, int(lab.stdout.readline())


def test_the_server_never_outlives_its_lab(tmp_path: Path) -> None:
    """Killed, the lab says nothing: the server sees its end of the pair close and exits."""
    lab, pid = _lab(tmp_path)
    try:
        os.killpg(lab.pid, signal.SIGKILL)
        lab.wait(timeout=30)
        wait_for(lambda: _gone(pid), bool, expected=f"the server's process {pid} gone", timeout=30)
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_ctrl_c_reaches_the_lab_not_its_server(tmp_path: Path) -> None:
    """A terminal's Ctrl-C goes to the lab's process group; the server is not in it, so it still
    answers while the lab's teardown runs, and goes when that teardown stops it."""
    lab, pid = _lab(tmp_path)
    try:
        assert os.getpgid(pid) != os.getpgid(lab.pid)
        os.killpg(lab.pid, signal.SIGINT)
        out, _ = lab.communicate(timeout=60)
        assert out.splitlines() == ["answering after the Ctrl-C: 200", "stopped"]
        assert _gone(pid)
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)
        if lab.poll() is None:
            lab.kill()


def test_a_call_ends_when_the_other_end_goes_not_at_its_deadline() -> None:
    """A server's process that dies mid-call must not hold a kubelet for the call's whole deadline."""
    ours, theirs = socket.socketpair()
    channel = Channel(Connection(ours.detach()), "lab")
    reader = threading.Thread(target=channel.serve, args=({},), daemon=True)
    reader.start()
    calling: list[BaseException] = []

    def call() -> None:
        try:
            channel.call("exec-register", "default", "p", "app", timeout=120)
        except LabError as exc:
            calling.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    theirs.recv(1)  # the request arrived; the other end now goes without a word
    theirs.close()
    caller.join(timeout=30)  # its deadline is 120 s: ended by the close, or still waiting
    closed = "lab: exec-register failed: lab: the other end closed the channel"
    assert [str(exc) for exc in calling] == [closed]
    with pytest.raises(LabError, match="closed"):
        channel.send("log", "default", "p", "app", "late line", "2026-12-05T00:00:00+00:00")
    channel.close()


def test_a_server_that_died_can_be_started_again(tmp_path: Path) -> None:
    server = ApiServerProcess(tmp_path / "api")
    server.start()
    first = server.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: server.running, lambda up: not up, expected="the killed server gone", timeout=30)
    server.start()
    try:
        assert server.pid not in (None, first)
        api = new_client_from_config(config_file=str(server.kubeconfig_path))
        core: CoreApi = client.CoreV1Api(api)
        assert core.read_namespace("default").metadata.name == "default"
        api.close()
        assert server.exec_handlers is not None
        server.exec_handlers.register("default", "p", "app", lambda argv, stdin: ExecResult())
    finally:
        server.stop()
    assert _gone(first)


def test_a_line_that_arrives_after_its_pod_was_deleted_goes_with_the_pod(
    served: ApiServerProcess, core: CoreApi
) -> None:
    core.create_namespaced_pod("default", pod_body("p"))
    core.delete_namespaced_pod("p", "default")
    assert served.logs is not None
    assert served.exec_handlers is not None
    served.logs.append("default", "p", "app", "a late line of the deleted pod")
    # A call is answered after every message sent before it: the late line has been handled.
    served.exec_handlers.register("default", "other", "app", lambda argv, stdin: ExecResult())
    core.create_namespaced_pod("default", pod_body("p"))
    assert core.read_namespaced_pod_log("p", "default") == ""


def test_a_request_the_other_end_cannot_answer_fails_that_call_only() -> None:
    ours, theirs = socket.socketpair()
    caller = Channel(Connection(ours.detach()), "lab")
    answerer = Channel(Connection(theirs.detach()), "server")
    handlers = {"echo": lambda value: value, "view": lambda: memoryview(b"not picklable")}
    threads = [
        threading.Thread(target=answerer.serve, args=(handlers,), daemon=True),
        threading.Thread(target=caller.serve, args=({},), daemon=True),
    ]
    for thread in threads:
        thread.start()
    with pytest.raises(LabError, match="no handler for 'nope'"):
        caller.call("nope", timeout=10)
    with pytest.raises(LabError, match="view's answer could not be sent"):
        caller.call("view", timeout=10)
    assert caller.call("echo", 7, timeout=10) == 7
    answerer.close()
    caller.close()
