"""The run's raw evidence: what an engineer digs through after the report says what went wrong.

Each part is read through the target's ports and written on its own, so one that cannot be read
(the API already gone, a pod without logs) leaves a note in its place and loses none of the others.
Everything passes the redactor before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from bgpconform.report.redact import Redactor

if TYPE_CHECKING:
    from bgpconform.cilium.port import CiliumPort
    from bgpconform.routers.port import RouterDump


class RecordedTarget(Protocol):
    """What the report reads of a target before it stops (every target offers it; the report knows
    no target)."""

    @property
    def cilium(self) -> CiliumPort: ...

    def versions(self) -> dict[str, str]: ...

    def router_dump(self) -> RouterDump: ...

    def dump_api(self, path: Path) -> None: ...


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "unnamed"


def collect_raw(target: RecordedTarget, directory: Path, redactor: Redactor) -> list[str]:
    """Write every part that can be read; returns one line per part that could not be."""
    problems: list[str] = []

    def write(relative: str, text: str) -> None:
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redactor.text(text), encoding="utf-8")

    def attempt(part: str, read: Callable[[], None]) -> None:
        try:
            read()
        except Exception as exc:
            problem = f"{part}: could not be read: {type(exc).__name__}: {exc}"
            problems.append(problem)
            write(f"{_slug(part)}.unreadable.txt", problem + "\n")

    def api_objects() -> None:
        path = directory / "api-objects.yaml"
        target.dump_api(path)
        redactor.file(path)

    def router() -> None:
        for command, output in target.router_dump().sections.items():
            write(f"router/{_slug(command)}.txt", f"# {command}\n{output}")

    def cilium_logs() -> None:
        cilium = target.cilium
        for pod in [*cilium.agent_pods(), *cilium.operator_pods()]:
            name = pod["metadata"]["name"]
            for container in pod["spec"]["containers"]:
                log = cilium.logs(name, container["name"])
                write(f"logs/{pod['metadata']['namespace']}_{name}_{container['name']}.log", log)

    attempt("api objects", api_objects)
    attempt("router state", router)
    attempt("cilium logs", cilium_logs)
    return problems
