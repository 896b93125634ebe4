"""`bgpconform lab up / status / down`: one lab kept running in the background for a person to explore.

`up` starts a detached `bgpconform lab serve` process that owns the lab (its run record names that
process, so if it is killed the next sweep removes everything) and returns once the lab is usable,
printing how to reach it. `down` asks that process to stop and waits until it has removed everything.
The state file lives in the run state root (tmpfs), beside the run directories.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bgpconform.errors import LabError
from bgpconform.lab.runs import process_start_ticks, state_root, sweep_stale_runs
from bgpconform.waiting import WaitTimeout, wait_for

if TYPE_CHECKING:
    from bgpconform.lab.lab import Lab
    from bgpconform.targets.lab import LabTarget

STATE_FILE = "interactive.json"
LOG_FILE = "interactive.log"


def state_path() -> Path:
    return state_root() / STATE_FILE


def log_path() -> Path:
    return state_root() / LOG_FILE


@dataclass(frozen=True)
class LabState:
    """What `lab up` hands a person: the serving process and where the lab's parts are."""

    pid: int
    start_ticks: int
    topology: str
    details: dict[str, Any]

    @property
    def alive(self) -> bool:
        return process_start_ticks(self.pid) == self.start_ticks

    @property
    def kubeconfig(self) -> str:
        return str(self.details["kubeconfig"])

    @property
    def client_namespace(self) -> str:
        return str(self.details["namespaces"]["client"])


def read_state() -> LabState | None:
    try:
        data = json.loads(state_path().read_text())
        return LabState(
            int(data["pid"]), int(data["start_ticks"]), str(data["topology"]), dict(data["details"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(state: LabState) -> None:
    path = state_path()
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.write_text(
        json.dumps(
            {
                "pid": state.pid,
                "start_ticks": state.start_ticks,
                "topology": state.topology,
                "details": state.details,
            },
            indent=2,
        )
    )
    staging.rename(path)


class _StopWhileStarting(BaseException):
    """Raised by the signal handler while the lab is still coming up, so the start unwinds at once.

    A BaseException, as KeyboardInterrupt is: no `except Exception` on the way (a log handler, a
    client's retry) may swallow it and leave a lab up that was told to stop.
    """


class _Signals:
    """How `lab serve` answers SIGTERM, SIGHUP and SIGINT in each phase of its life.

    Starting, the first signal raises `_StopWhileStarting` wherever the start is, and the start's
    cleanup removes what was made, as after any failed start; later ones leave that cleanup alone.
    Inside `held()` (a claim not yet recorded anywhere) the signal waits until the block ends.
    Serving, a signal ends the wait. Stopping, signals are ignored.
    """

    WATCHED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.serving = False
        self._holding = False
        self._pending: str | None = None
        self._raised = False

    def install(self) -> None:
        for sig in self.WATCHED:
            signal.signal(sig, self._handle)

    def ignore(self) -> None:
        for sig in self.WATCHED:
            signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum: int, frame: object) -> None:
        if self.serving:
            self.stop.set()
        elif self._holding:
            self._pending = signal.Signals(signum).name
        else:
            self._raise(signal.Signals(signum).name)

    def _raise(self, name: str) -> None:
        if not self._raised:
            self._raised = True
            raise _StopWhileStarting(name)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A signal inside the block takes effect when it ends; a failure of the block goes first."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending is not None:
            self._raise(self._pending)


def serve(
    topology_file: Path,
    stage: str = "minimal",
    defects: tuple[str, ...] = (),
    seed: int | None = None,
    shortcuts: tuple[str, ...] = (),
) -> int:
    """The body of the background process: bring the lab up (to `stage` of the walkthrough), publish its
    state, hold it until told to stop; a signal stops it in any phase (see `_Signals`)."""
    signals = _Signals()
    signals.install()
    lab: Lab | None = None
    target: LabTarget | None = None
    try:
        from bgpconform.lab import defects as lab_defects
        from bgpconform.lab import shortcuts as lab_shortcuts
        from bgpconform.lab.lab import Lab
        from bgpconform.stage import Stage, parse_stage
        from bgpconform.topology import load_topology

        topology = load_topology(topology_file)
        wanted = parse_stage(stage)
        # The wire builds (mostly waiting on `ip` and FRR) while the control plane's modules import,
        # which takes about a second of this process's start.
        lab_defects.activate(defects)  # the router's configuration is written as the wire builds
        lab_shortcuts.activate(shortcuts)
        with signals.held():  # until `lab` holds the claimed run and its building wire
            lab = Lab(topology, "interactive").claim()
            lab.begin_build()
        from bgpconform.targets.lab import LabTarget
        from bgpconform.walkthrough.machine import StageMachine

        target = LabTarget(
            topology, purpose="interactive", lab=lab, defects=defects, shortcuts=shortcuts, seed=seed
        )
        target.start()
        cluster = target.cluster
        walkthrough = StageMachine(target)
        walkthrough.reached(Stage.MINIMAL)  # a fresh lab is the walkthrough's start
        walkthrough.wait_nodes_registered()
        walkthrough.bring_to(wanted)
        ticks = process_start_ticks(os.getpid())
        assert ticks is not None
        details = cluster.describe()
        details["timings"] = {
            "network": cluster.timings.network,
            "api": cluster.timings.api,
            "components": cluster.timings.components,
            "up": cluster.timings.up,
        }
        details["stage"] = wanted.label
        details["defects"] = list(defects)
        details["seed"] = target.seed
        details["shortcuts"] = list(shortcuts)
        signals.serving = True
        _write_state(LabState(os.getpid(), ticks, str(topology_file), details))
        print(f"lab {details['run_id']} is up", flush=True)
        while not signals.stop.wait(3600):
            pass
    except _StopWhileStarting as signalled:
        print(f"stopped by {signalled} while starting", flush=True)
        interrupted = signalled.__context__
        if interrupted is not None:
            # Not a failure by itself: importlib and retry loops handle exceptions as they go, and
            # a signal landing in such a handler says nothing about the start (CI saw one land in
            # importlib's path cache). Named, in case the start was failing as the signal came.
            print(f"  it came while {interrupted!r} was being handled", flush=True)
    finally:
        signals.ignore()
        if target is not None:
            target.stop()
        if lab is not None:
            lab.stop()  # stopped with the target already, unless a signal came between the two
        with contextlib.suppress(FileNotFoundError):
            state_path().unlink()
        print("lab is down", flush=True)
    return 0


def up(
    topology_file: Path,
    *,
    timeout: float = 60.0,
    stage: str = "minimal",
    check: Callable[[], object] = lambda: None,
    defects: tuple[str, ...] = (),
    seed: int | None = None,
    shortcuts: tuple[str, ...] = (),
) -> LabState:
    """Start the background lab and return once its API answers and its nodes have registered.

    `check` validates the request (the topology file) while the lab process starts: each process
    spends about half a second importing, and the machine has a core for each. When it raises, the
    lab process is stopped and removes whatever it had made before the error is passed on.
    """
    current = read_state()
    if current is not None and current.alive:
        raise LabError(
            f"a lab is already up (pid {current.pid}, kubeconfig {current.kubeconfig}); "
            "run `bgpconform lab down` first"
        )
    sweep_stale_runs()
    with contextlib.suppress(FileNotFoundError):
        state_path().unlink()
    root = state_root()
    root.mkdir(parents=True, exist_ok=True)
    with log_path().open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bgpconform.cli",
                "lab",
                "serve",
                "--topology",
                str(topology_file),
                "--stage",
                stage,
                *[argument for name in defects for argument in ("--defect", name)],
                *([] if seed is None else ["--seed", str(seed)]),
                *[argument for name in shortcuts for argument in ("--shortcut", name)],
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def probe() -> LabState | int | None:
        code = process.poll()
        if code is not None:
            return code
        state = read_state()
        return state if state is not None and state.pid == process.pid else None

    try:
        check()
        # Polling a local file and a child's exit status is cheap: poll often, so `up` returns promptly.
        waited = wait_for(
            probe,
            lambda seen: seen is not None,
            expected="the lab to be up",
            timeout=timeout,
            interval=0.02,
            max_interval=0.05,
        )
    except WaitTimeout:
        _stop_starting(process)
        raise LabError(f"the lab did not come up within {timeout:.0f}s; its log:\n{_log_tail()}") from None
    except BaseException:  # the check failed, or Ctrl-C: nobody would be told of a lab left starting
        _stop_starting(process)
        raise
    if isinstance(waited.value, int):
        raise LabError(f"the lab failed to start (exit code {waited.value}); its log:\n{_log_tail()}")
    assert isinstance(waited.value, LabState)
    return waited.value


def _stop_starting(process: subprocess.Popen[bytes]) -> None:
    """Ask a lab process that is still starting to stop, and wait until it has removed what it made."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        sweep_stale_runs()  # its run record names a dead owner now


def down(timeout: float = 60.0) -> LabState | None:
    """Stop the background lab; returns what was stopped, or None when no lab was up."""
    state = read_state()
    if state is None or not state.alive:
        sweep_stale_runs()
        with contextlib.suppress(FileNotFoundError):
            state_path().unlink()
        return None
    os.kill(state.pid, signal.SIGTERM)
    try:
        # Reading /proc is cheap: poll often, so `down` returns as soon as the lab is gone.
        wait_for(
            lambda: state.alive,
            lambda alive: not alive,
            expected="the lab process to exit",
            timeout=timeout,
            interval=0.02,
            max_interval=0.05,
        )
    except WaitTimeout:
        with contextlib.suppress(ProcessLookupError):
            os.kill(state.pid, signal.SIGKILL)
        wait_for(lambda: state.alive, lambda alive: not alive, expected="the lab process to die", timeout=10)
    sweep_stale_runs()
    with contextlib.suppress(FileNotFoundError):
        state_path().unlink()
    return state


def _log_tail(lines: int = 30) -> str:
    try:
        return "\n".join(log_path().read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"
