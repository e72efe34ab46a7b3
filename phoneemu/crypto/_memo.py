"""A bounded memo keyed by object identity, for values derived from immutable objects (perf only).

Rule: the memo keeps a strong reference to each object it remembers, so an ``id`` cannot be reused by
another object while its entry exists; a hit requires the very same object (``is``), never just an
equal one — the derived value is exactly what the function would return. When ``max_items`` is
reached the memo is emptied (memory stays bounded). Fleets hand the same parsed certificate and key
objects to thousands of phones, so their derived texts and digests are computed once.

A hot path of this package may read ``memo._items`` itself, a call less a lookup (issue #6):
``id(obj)`` → ``(obj, value)``, an entry being ``obj``'s only when its first item ``is obj`` (another
object's id may be reused).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["IdentityMemo"]


class IdentityMemo(Generic[K, V]):
    """``memo(obj)`` is ``compute(obj)``, computed once per object (see module docstring)."""

    __slots__ = ("_compute", "_items", "max_items")

    def __init__(self, compute: Callable[[K], V], *, max_items: int = 4096) -> None:
        self._compute = compute
        self._items: dict[int, tuple[K, V]] = {}
        self.max_items = max_items

    def __call__(self, obj: K) -> V:
        hit = self._items.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = self._compute(obj)
        if len(self._items) >= self.max_items:
            self._items.clear()
        self._items[id(obj)] = (obj, value)
        return value

    def remember(self, obj: K, value: V) -> None:
        """Record ``value`` as ``compute(obj)`` (the caller made ``obj`` from ``value``)."""
        if len(self._items) >= self.max_items:
            self._items.clear()
        self._items[id(obj)] = (obj, value)

    def __len__(self) -> int:
        return len(self._items)
