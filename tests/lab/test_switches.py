"""Named switches (defects, shortcuts): a wrong name is one message with the fix; the set in force is
replaced, never merged, so one lab's defects never leak into the next lab of the process."""

from __future__ import annotations

import pytest

from bgpconform.errors import ConfigError
from bgpconform.lab.switches import Switches


def test_an_unknown_name_is_refused_with_the_choices_and_asking_for_one_is_a_bug() -> None:
    switches = Switches("--lab-shortcut", "shortcut", ["short-bgp-timers"])
    with pytest.raises(ConfigError) as refused:
        switches.checked(["short-timers"])
    assert str(refused.value) == (
        "--lab-shortcut short-timers: no such shortcut; fix: choose from short-bgp-timers"
    )
    with pytest.raises(KeyError):
        switches.active("short-timers")


def test_activating_replaces_the_set_in_force() -> None:
    switches = Switches("--lab-defect", "defect", ["a", "b"])
    switches.activate(["a"])
    assert (switches.active("a"), switches.active("b")) == (True, False)
    switches.activate(["b"])
    assert switches.active_names() == ("b",)
    switches.activate([])
    assert switches.active_names() == ()
