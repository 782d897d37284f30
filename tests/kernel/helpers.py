"""Small actors used by the kernel tests."""

from __future__ import annotations

from dataclasses import dataclass

import gevent

from skupper_actors.kernel import Actor, Down


@dataclass(frozen=True, slots=True, kw_only=True)
class Crash:
    why: str = "planted crash"


@dataclass(frozen=True, slots=True, kw_only=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Echo:
    value: object


class Recorder(Actor):
    """Appends (name, event) to a shared journal; crashes on ``Crash``."""

    def __init__(self, journal: list[tuple[str, str]], name: str, fail_start: bool = False) -> None:
        super().__init__()
        self.journal = journal
        self.label = name
        self.fail_start = fail_start
        self.downs: list[Down] = []

    def on_start(self) -> None:
        if self.fail_start:
            raise RuntimeError(f"{self.label} cannot start")
        self.journal.append((self.label, "start"))

    def on_receive(self, message: object) -> object:
        if isinstance(message, Crash):
            raise RuntimeError(message.why)
        if isinstance(message, Sleep):
            gevent.sleep(message.seconds)
            return "slept"
        if isinstance(message, Down):
            self.downs.append(message)
            return None
        if isinstance(message, Echo):
            return message.value
        return super().on_receive(message)

    def on_stop(self, reason: object) -> None:
        self.journal.append((self.label, "stop"))
