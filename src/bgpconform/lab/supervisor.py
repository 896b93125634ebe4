"""Daemons the lab starts as its own children, so it can reap them and read their logs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bgpconform.errors import LabError
from bgpconform.waiting import WaitTimeout, wait_for


class Daemon:
    """One foreground process with its output in a log file; never daemonised, so never orphaned."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> None:
        """`env`: its environment when not this process's; `pass_fds`: descriptors it inherits."""
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.pass_fds = tuple(pass_fds)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=self.env,
                pass_fds=self.pass_fds,
            )

    def wait_ready(self, probe: Callable[[], bool], expected: str, timeout: float) -> float:
        """Wait until `probe` says the daemon answers; a daemon that exits meanwhile fails at once."""

        def check() -> str:
            if self._process is not None and self._process.poll() is not None:
                raise LabError(
                    f"{self.name} exited with code {self._process.returncode} while starting; "
                    f"last log lines:\n{self.log_tail()}"
                )
            return "answering" if probe() else "not answering yet"

        try:
            # Daemons answer within tens of milliseconds and the probes are cheap (a file, one vtysh
            # call): poll often, since every lab start waits here.
            return wait_for(
                check,
                lambda state: state == "answering",
                expected=expected,
                timeout=timeout,
                interval=0.01,
                max_interval=0.05,
            ).elapsed
        except WaitTimeout as exc:
            raise LabError(f"{self.name} did not start: {exc}\nlast log lines:\n{self.log_tail()}") from exc

    def stop(self, grace: float = 3.0) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)

    def kill(self, grace: float = 3.0) -> None:
        """SIGKILL: no shutdown of its own (no goodbye on its connections)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(timeout=grace)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"
