"""Find actors by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import NameTaken

if TYPE_CHECKING:
    from .actor import ActorRef


class Registry:
    """Names to live actors; an actor leaves the registry when it exits."""

    def __init__(self) -> None:
        self._refs: dict[str, ActorRef] = {}

    def register(self, name: str, ref: ActorRef) -> None:
        held = self._refs.get(name)
        if held is not None and held.alive and held is not ref:
            raise NameTaken(f"name {name!r} is held by {held.path}")
        self._refs[name] = ref

    def unregister(self, name: str, ref: ActorRef) -> None:
        if self._refs.get(name) is ref:
            del self._refs[name]

    def lookup(self, name: str) -> ActorRef | None:
        ref = self._refs.get(name)
        return ref if ref is not None and ref.alive else None

    def names(self) -> list[str]:
        return sorted(name for name, ref in self._refs.items() if ref.alive)
