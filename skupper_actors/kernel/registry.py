"""Find actors by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .errors import NameTaken

if TYPE_CHECKING:
    from .actor import ActorRef

M = TypeVar("M")


class ActorName(Generic[M]):
    """A registered name that knows the messages its actor takes.

    ``registry.lookup(ROUTING)`` with ``ROUTING = ActorName[RoutingMessage]("routing")``
    returns an ``ActorRef[RoutingMessage]``; a plain string returns ``ActorRef[Any]``.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ActorName({self.name!r})"


class Registry:
    """Names to live actors; an actor leaves the registry when it exits."""

    def __init__(self) -> None:
        self._refs: dict[str, ActorRef[Any]] = {}

    def register(self, name: str | ActorName[Any], ref: ActorRef[Any]) -> None:
        key = name.name if isinstance(name, ActorName) else name
        held = self._refs.get(key)
        if held is not None and held.alive and held is not ref:
            raise NameTaken(f"name {key!r} is held by {held.path}")
        self._refs[key] = ref

    def unregister(self, name: str | ActorName[Any], ref: ActorRef[Any]) -> None:
        key = name.name if isinstance(name, ActorName) else name
        if self._refs.get(key) is ref:
            del self._refs[key]

    @overload
    def lookup(self, name: ActorName[M]) -> ActorRef[M] | None: ...

    @overload
    def lookup(self, name: str) -> ActorRef[Any] | None: ...

    def lookup(self, name: str | ActorName[Any]) -> ActorRef[Any] | None:
        ref = self._refs.get(name.name if isinstance(name, ActorName) else name)
        # (ActorRef.alive, inline: several lookups per TCP connection)
        return ref if ref is not None and not ref._actor._kernel_dead else None

    def names(self) -> list[str]:
        return sorted(name for name, ref in self._refs.items() if ref.alive)
