"""What ``MapView.keys()``, ``values()`` and ``items()`` return.

They are the ``collections.abc`` views, so they have the set operations and
``in`` of a dict's; iterating one reads all entries in one native call rather
than looking each key up again.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any

__all__ = ["MapKeys", "MapValues", "MapItems"]


class MapKeys(KeysView[Any]):
    __slots__ = ()


class MapValues(ValuesView[Any]):
    __slots__ = ()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._mapping._values())  # type: ignore[attr-defined]


class MapItems(ItemsView[Any, Any]):
    __slots__ = ()

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return iter(self._mapping._entries())  # type: ignore[attr-defined]
