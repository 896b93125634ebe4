"""What a run's system under test was made of: which parts were the real software and which the lab
emulated, and which shortcuts were in force. A report states it at the top, so a verdict from a lab
run is never read as the sign-off of a k3s, Cilium or RouterOS release."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provenance:
    real: tuple[str, ...]
    emulated: tuple[str, ...] = ()
    shortcuts: tuple[str, ...] = ()  # named options that trade faithfulness for speed, each documented
    defects: tuple[str, ...] = ()  # lab defects switched on: the run was broken on purpose

    @property
    def all_real(self) -> bool:
        return not self.emulated and not self.shortcuts and not self.defects
