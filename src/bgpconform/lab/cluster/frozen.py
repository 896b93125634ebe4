"""The informer cache's contract: its objects are shared with every reader, and nobody changes them.

An informer hands its whole cache to every reconcile pass. Copying it each time made a 50-node lab
spend most of its time in `copy.deepcopy` (every controller copying every pod on every event), so
readers get the cached objects themselves, as client-go's listers do, and one that wants to change an
object takes `copy.deepcopy(obj)` first. client-go checks that contract only when asked
(`KUBE_CACHE_MUTATION_DETECTOR`); so does the lab: with `BGPCONFORM_CACHE_MUTATION_DETECTOR=1` (the
harness's own tests set it) every cached object is frozen, and changing one raises `TypeError` at the
line that did it. Off, freezing costs nothing: at 50 nodes it was most of the lab's time again, every
informer of every agent freezing every event it receives.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn, SupportsIndex

DETECTOR_VARIABLE = "BGPCONFORM_CACHE_MUTATION_DETECTOR"


def _refuse(*_args: object, **_kwargs: object) -> NoReturn:
    raise TypeError("an informer's object is shared and read-only: change copy.deepcopy(obj) instead")


class FrozenDict(dict[str, Any]):
    """A dict whose mutators raise; json, `isinstance(x, dict)` and `==` see a plain dict."""

    __slots__ = ()
    __setitem__ = __delitem__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return {key: thaw(value) for key, value in self.items()}

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __reduce__(self) -> NoReturn:
        _refuse()


class FrozenList(list[Any]):
    """A list whose mutators raise."""

    __slots__ = ()
    __setitem__ = __delitem__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse
    __iadd__ = __imul__ = _refuse

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return [thaw(value) for value in self]

    def __copy__(self) -> list[Any]:
        return list(self)

    def __reduce__(self) -> NoReturn:
        _refuse()

    def __mul__(self, count: SupportsIndex) -> list[Any]:
        return list(self) * count


def cached(value: Any) -> Any:
    """What an informer keeps of a decoded object: the object itself, frozen under the detector."""
    return freeze(value) if os.environ.get(DETECTOR_VARIABLE) == "1" else value


def freeze(value: Any) -> Any:
    """The same JSON value, read-only all the way down."""
    if isinstance(value, dict):
        return FrozenDict((key, freeze(item)) for key, item in value.items())
    if isinstance(value, list):
        return FrozenList(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A plain, mutable copy of a frozen (or plain) JSON value."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value
