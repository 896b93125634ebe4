"""What is still running on this machine, for tests that check a lab left nothing behind."""

from __future__ import annotations

from pathlib import Path

from bgpconform.lab.runs import process_start_ticks


def running_command_lines(*fragments: str) -> list[str]:
    """Command lines of running processes (zombies excluded) that contain every fragment."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command_line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(f in command_line for f in fragments) and process_start_ticks(int(proc.name)) is not None:
            found.append(command_line)
    return found
