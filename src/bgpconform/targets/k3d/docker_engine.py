"""A Docker engine for the k3d target: the one the environment points at, or a private one we start.

CI machines and this project's tests may have Docker installed but no daemon running. `running_engine`
then starts `dockerd` with a socket, state and log of its own, and with every host-network side effect
turned off (no iptables or ip6tables rules, no IP forwarding or masquerading, no default bridge): the
engine's containers talk to each other on their own bridges and to the host only through ports
published on 127.0.0.1, and the host's firewall, which other tests rely on, stays untouched. Whatever
cannot work is one `EngineUnavailable` whose message says why (binary missing, not root, the daemon's
last log lines), so a test can skip with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException

from bgpconform.errors import PrerequisiteError
from bgpconform.waiting import WaitTimeout, wait_for

PRIVATE_RUN_DIR = Path("/run/bgpconform-docker")  # not under /run/bgpconform: the lab sweeps that
PRIVATE_DATA_DIR = Path("/var/lib/bgpconform-docker")  # kept between runs: the stand-in image's cache
# No host firewall rules, no forwarding from the engine's bridges to real networks, no docker0.
DOCKERD_FLAGS = (
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--bridge=none",
)
LOG_LINES = 20


class EngineUnavailable(PrerequisiteError):
    """No Docker engine can be used here; the message says why and what would fix it."""


DEFAULT_SOCKET = "unix:///var/run/docker.sock"


@dataclass
class Engine:
    """A reachable engine; `process` is set only when this process started the daemon."""

    client: docker.DockerClient
    environment: dict[str, str]  # the DOCKER_* variables that reach it, for every other client
    process: subprocess.Popen[bytes] | None = None
    log_file: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        return self.environment.get("DOCKER_HOST", DEFAULT_SOCKET)

    @property
    def started_here(self) -> bool:
        return self.process is not None

    @property
    def client_kwargs(self) -> dict[str, Any]:
        """What testcontainers' `docker_client_kw` needs to reach this same engine."""
        return {"environment": dict(self.environment)}

    def stop(self, timeout: float = 30.0) -> None:
        """Close the client; stop the daemon only if it is ours (its containers should be gone)."""
        if self._stopped:
            return
        self._stopped = True
        with suppress(DockerException, OSError):
            self.client.close()
        if self.process is not None:
            _stop_process(self.process, timeout)


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def _ping(environment: Mapping[str, str]) -> docker.DockerClient:
    client = docker.from_env(environment=dict(environment), timeout=10)
    try:
        client.ping()
    except BaseException:
        client.close()
        raise
    return client


def find_engine(environ: Mapping[str, str] | None = None, run_dir: Path = PRIVATE_RUN_DIR) -> Engine | None:
    """The engine DOCKER_HOST (or the default socket) names, else a private one still running."""
    env = os.environ if environ is None else environ
    from_env = {name: value for name, value in env.items() if name.startswith("DOCKER_")}
    for environment in (from_env, {"DOCKER_HOST": f"unix://{run_dir / 'docker.sock'}"}):
        try:
            client = _ping(environment)
        except (DockerException, OSError):
            continue
        return Engine(client, environment)
    return None


def _last_lines(path: Path, count: int = LOG_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc.strerror}>"
    return "\n".join(lines[-count:]) or "<empty>"


def start_engine(
    run_dir: Path = PRIVATE_RUN_DIR, data_dir: Path = PRIVATE_DATA_DIR, timeout: float = 60.0
) -> Engine:
    """Start a private `dockerd` and return once it answers a ping; its log is `run_dir/dockerd.log`."""
    binary = shutil.which("dockerd")
    if binary is None:
        raise EngineUnavailable(
            "no Docker engine: `dockerd` is not on PATH and none answers at DOCKER_HOST or "
            "/var/run/docker.sock; fix: install Docker (Debian: apt-get install docker.io)"
        )
    if os.geteuid() != 0:
        raise EngineUnavailable("no Docker engine: starting dockerd needs root; fix: run as root")
    run_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "daemon.json"
    config.write_text("{}\n")  # not /etc/docker/daemon.json: nothing there may turn iptables back on
    socket = run_dir / "docker.sock"
    base_url = f"unix://{socket}"
    log_file = run_dir / "dockerd.log"
    argv = [
        binary,
        *DOCKERD_FLAGS,
        f"--host={base_url}",
        f"--data-root={data_dir}",
        f"--exec-root={run_dir / 'exec'}",
        f"--pidfile={run_dir / 'dockerd.pid'}",
        f"--config-file={config}",
    ]
    with log_file.open("ab") as log:
        log.write(f"--- {' '.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    environment = {"DOCKER_HOST": base_url}

    def probe() -> docker.DockerClient:
        code = process.poll()
        if code is not None:
            raise EngineUnavailable(
                f"dockerd exited with code {code} while starting; its last log lines "
                f"({log_file}):\n{_last_lines(log_file)}"
            )
        return _ping(environment)

    try:
        client = wait_for(
            probe,
            lambda _: True,
            expected=f"dockerd answering a ping on {base_url}",
            timeout=timeout,
            interval=0.1,
            max_interval=1.0,
            tolerate=(DockerException, OSError),
        ).value
    except WaitTimeout as exc:
        _stop_process(process, timeout)
        raise EngineUnavailable(
            f"dockerd did not come up: {exc}\nits last log lines ({log_file}):\n{_last_lines(log_file)}"
        ) from exc
    except BaseException:
        _stop_process(process, timeout)
        raise
    return Engine(client, environment, process, log_file)


@contextmanager
def running_engine(
    run_dir: Path = PRIVATE_RUN_DIR, data_dir: Path = PRIVATE_DATA_DIR, timeout: float = 60.0
) -> Iterator[Engine]:
    """An engine for the duration of the block: the existing one, else a private one stopped after."""
    engine = find_engine(run_dir=run_dir) or start_engine(run_dir, data_dir, timeout)
    try:
        yield engine
    finally:
        engine.stop()
