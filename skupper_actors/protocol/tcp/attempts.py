"""The ingress's attempt policy: which refusals try another destination, and how often.

The ingress opens the forward stream and waits for the reverse one before it reads
its client, so a refused attempt has nothing to replay but the early bytes it kept.
A refusal that says the destination itself cannot serve excludes that router from the
next attempts; any other (a path lost on the way) may try the same router by another
path, after a short pause that lets routing take the lost path out first.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ATTEMPTS = 3
PATH_RETRY_DELAY = 0.05
# The destination cannot serve (the next attempt goes elsewhere); "no-answer": the
# reverse stream did not arrive within the ingress's accept timeout.
DESTINATION_REFUSALS = frozenset(
    {"skupper:connect-failed", "skupper:no-connector", "skupper:busy", "skupper:no-answer"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """Try again; ``delay`` seconds first."""

    delay: float


@dataclass(frozen=True, slots=True, kw_only=True)
class GiveUp:
    """No attempt left: reset the client when some destination was tried (as a refused
    server would), close it when there was none to try (accept and close)."""

    reset: bool


class Attempts:
    """The attempts of one ingress connection."""

    __slots__ = ("_excluded", "_tried", "max_attempts")

    def __init__(self, max_attempts: int = MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self._excluded: set[str] | None = None  # made at the first refusal (rare)
        self._tried: list[str] = []

    @property
    def excluded(self) -> frozenset[str]:
        """Routers the next attempt must not pick."""
        return frozenset(self._excluded or ())

    @property
    def tried(self) -> tuple[str, ...]:
        return tuple(self._tried)

    @property
    def current(self) -> int:
        """The number of the attempt under way (1-based; 0 before the first)."""
        return len(self._tried)

    def may_start(self) -> bool:
        return len(self._tried) < self.max_attempts

    def start(self, router_id: str) -> int:
        """An attempt toward ``router_id`` begins; returns its number."""
        if not self.may_start():
            raise RuntimeError("no attempt left")
        self._tried.append(router_id)
        return len(self._tried)

    def refused(self, attempt: int, condition: str | None) -> Retry | GiveUp | None:
        """The attempt ``attempt`` was refused; None when it is not the current one (a
        late refusal of an attempt given up already must not touch the next)."""
        if attempt != self.current or attempt == 0:
            return None
        if condition in DESTINATION_REFUSALS:
            if self._excluded is None:
                self._excluded = set()
            self._excluded.add(self._tried[-1])
            delay = 0.0
        else:
            delay = PATH_RETRY_DELAY
        if not self.may_start():
            return GiveUp(reset=True)
        return Retry(delay=delay)

    def no_destination(self) -> GiveUp:
        """Routing offers no destination (left) for the key."""
        return GiveUp(reset=bool(self._tried))
