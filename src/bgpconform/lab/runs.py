"""Run ownership: every lab records who made it, so the next start can remove what a killed run left.

A run owns a directory under the state root and every network namespace whose name starts with its
prefix. The record is written before anything else is made and removed after everything else is gone,
so a run killed at any point (SIGKILL included) leaves a record or nothing, never an orphan the sweep
cannot attribute.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bgpconform.commands import run
from bgpconform.waiting import WaitTimeout, wait_for

log = logging.getLogger(__name__)

NAMESPACE_PREFIX = "bgpc-"
STATE_ROOT_ENV = "BGPCONFORM_STATE_DIR"
DEFAULT_STATE_ROOT = Path("/run/bgpconform")
OWNER_FILE = "owner.json"


def state_root() -> Path:
    """Where run records live: tmpfs by default, so a reboot clears them along with the namespaces."""
    return Path(os.environ.get(STATE_ROOT_ENV, str(DEFAULT_STATE_ROOT)))


EXITED_STATES = frozenset({"Z", "X"})  # /proc/PID/stat field 3: zombie, dead


def process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of a running process; with the pid it identifies a process across pid
    reuse. None once it has exited, also while it waits as a zombie to be reaped: a `lab serve` whose
    `lab up` is gone is reaped by init whenever init gets to it, seconds later on some machines."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in EXITED_STATES:
        return None
    return int(fields[19])


@dataclass(frozen=True)
class RunRecord:
    """Who owns a run; written to `owner.json` in the run directory."""

    run_id: str
    owner_pid: int
    owner_start_ticks: int
    created_at: float
    purpose: str

    @property
    def namespace_prefix(self) -> str:
        return namespace_prefix(self.run_id)

    def owner_alive(self) -> bool:
        return process_start_ticks(self.owner_pid) == self.owner_start_ticks


def namespace_prefix(run_id: str) -> str:
    return f"{NAMESPACE_PREFIX}{run_id}-"


@dataclass
class Run:
    """A live run: its id, its directory and the record that claims both."""

    record: RunRecord
    directory: Path

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def namespace(self, role: str) -> str:
        """The run-scoped name of a namespace, so two labs on one machine never collide."""
        return f"{self.record.namespace_prefix}{role}"


def start_run(purpose: str, owner_pid: int | None = None) -> Run:
    """Claim a new run id and write its ownership record before anything else is created."""
    root = state_root()
    root.mkdir(parents=True, exist_ok=True)
    pid = owner_pid if owner_pid is not None else os.getpid()
    ticks = process_start_ticks(pid)
    if ticks is None:
        raise ValueError(f"owner process {pid} does not exist")
    while True:
        run_id = secrets.token_hex(3)
        directory = root / run_id
        if directory.exists():
            continue
        record = RunRecord(run_id, pid, ticks, time.time(), purpose)
        # Build the record in a hidden directory and rename it into place, so a concurrent sweep never
        # sees a run directory without its owner.
        staging = root / f".staging-{run_id}-{os.getpid()}"
        staging.mkdir()
        (staging / OWNER_FILE).write_text(json.dumps(asdict(record), indent=2))
        try:
            staging.rename(directory)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            continue
        break
    return Run(record, directory)


def read_record(directory: Path) -> RunRecord | None:
    try:
        data = json.loads((directory / OWNER_FILE).read_text())
        return RunRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def list_namespaces() -> list[str]:
    listing = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def namespace_pids(namespace: str) -> list[int]:
    done = run(["ip", "netns", "pids", namespace], check=False)
    return [int(token) for token in done.stdout.split()]


def _alive(pid: int) -> bool:
    return process_start_ticks(pid) is not None


def terminate_pids(pids: list[int], grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL whatever outlives the grace period."""
    remaining = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in remaining:
            _signal(pid, sig)
        try:
            wait_for(
                functools.partial(_survivors, tuple(remaining)),
                lambda alive: not alive,
                expected=f"processes {remaining} exited after {sig.name}",
                timeout=grace,
                interval=0.01,
                max_interval=0.1,
            )
            return
        except WaitTimeout:
            if sig is signal.SIGKILL:
                raise
            remaining = _survivors(remaining)


def _survivors(pids: Sequence[int]) -> list[int]:
    return [pid for pid in pids if _alive(pid)]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def remove_namespace(namespace: str) -> None:
    """Stop every process inside a namespace, then delete it; its links, routes and rules go with it."""
    terminate_pids(namespace_pids(namespace))
    run(["ip", "netns", "delete", namespace], check=False)


def remove_run_artifacts(run_id: str, directory: Path | None, namespaces: list[str] | None = None) -> None:
    """Remove a run's namespaces (processes first), then its directory, then nothing is left."""
    prefix = namespace_prefix(run_id)
    present = namespaces if namespaces is not None else list_namespaces()
    owned = [ns for ns in present if ns.startswith(prefix)]
    pids = [pid for ns in owned for pid in namespace_pids(ns)]
    terminate_pids(pids)
    for ns in owned:
        deleted = run(["ip", "netns", "delete", ns], check=False)
        if deleted.returncode != 0:
            log.warning("namespace %s could not be deleted (left to the next sweep): %s", ns, deleted.stderr)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class SweptRun:
    """One stale run that a sweep removed, for the log."""

    run_id: str
    owner_pid: int | None
    namespaces: list[str]


def sweep_stale_runs() -> list[SweptRun]:
    """Remove every run whose owner is gone, and every namespace of ours that no live run claims."""
    root = state_root()
    namespaces = list_namespaces()
    live: set[str] = set()
    swept: list[SweptRun] = []
    if root.is_dir():
        for directory in sorted(root.iterdir()):
            if not directory.is_dir() or directory.name.startswith("."):
                continue
            record = read_record(directory)
            if record is not None and record.owner_alive():
                live.add(record.run_id)
                continue
            run_id = directory.name
            owned = [ns for ns in namespaces if ns.startswith(namespace_prefix(run_id))]
            remove_run_artifacts(run_id, directory, namespaces)
            swept.append(SweptRun(run_id, record.owner_pid if record else None, owned))
        for staging in root.glob(".staging-*"):
            owner = staging.name.rsplit("-", 1)[-1]
            if owner.isdigit() and not _alive(int(owner)):
                shutil.rmtree(staging, ignore_errors=True)
    orphans: dict[str, list[str]] = {}
    for ns in namespaces:
        if not ns.startswith(NAMESPACE_PREFIX):
            continue
        run_id = ns[len(NAMESPACE_PREFIX) :].split("-", 1)[0]
        if run_id not in live and not any(s.run_id == run_id for s in swept):
            orphans.setdefault(run_id, []).append(ns)
    for run_id, owned in orphans.items():
        remove_run_artifacts(run_id, None, owned)
        swept.append(SweptRun(run_id, None, owned))
    return swept
