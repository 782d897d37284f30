"""Value types shared by every resource: metadata, endpoints and immutable string maps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable `str -> str` mapping (labels, annotations, settings).

    Equal to any mapping with the same items, plain dicts included.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Metadata:
    """A resource's identity: `name` is a DNS-1123 label, unique per kind in a namespace."""

    name: str
    namespace: str | None = None
    labels: FrozenMap = field(default_factory=FrozenMap)
    annotations: FrozenMap = field(default_factory=FrozenMap)


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where a router accepts links: `name` is the role (inter-router, edge).

    Skupper writes the port as a string; it is an int here and a string in dumped YAML.
    """

    name: str
    host: str
    port: int
    group: str | None = None
