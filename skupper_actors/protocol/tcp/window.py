"""The per-direction byte window of a TCP stream, end to end.

Flow control is end to end and per direction, so a slow reader never stalls the other
streams that share an inter-router connection: the sender may have at most ``window``
bytes not yet acknowledged by the far end, which acknowledges bytes as it writes them to
its socket (after every ``ack_every`` bytes, and at the end).
"""

from __future__ import annotations

DEFAULT_WINDOW = 1 << 20
DEFAULT_ACK_EVERY = 256 << 10


class Window:
    """Bytes in flight in one direction, as seen by the sending end.

    ``sent`` and ``acked`` are end-to-end byte offsets from the start of the stream,
    the numbers a later resume on another path would restart from.
    """

    __slots__ = ("acked", "sent", "size")

    def __init__(self, size: int = DEFAULT_WINDOW) -> None:
        if size <= 0:
            raise ValueError("window size must be positive")
        self.size = size
        self.sent = 0
        self.acked = 0

    @property
    def in_flight(self) -> int:
        return self.sent - self.acked

    @property
    def open(self) -> bool:
        """True while the sender may read more from its socket."""
        return self.sent - self.acked < self.size

    def room(self) -> int:
        return max(0, self.size - (self.sent - self.acked))

    def on_sent(self, count: int) -> None:
        self.sent += count

    def on_ack(self, offset: int) -> bool:
        """Apply an acknowledgement; returns True if it moved the window.

        An offset beyond what was sent is a protocol error; an old one is ignored.
        """
        if offset > self.sent:
            raise ValueError(f"ack for offset {offset} beyond the {self.sent} bytes sent")
        if offset <= self.acked:
            return False
        self.acked = offset
        return True


class Acknowledger:
    """The receiving end's side: count bytes written and say when to acknowledge."""

    __slots__ = ("every", "reported", "written")

    def __init__(self, every: int = DEFAULT_ACK_EVERY) -> None:
        self.every = every
        self.written = 0
        self.reported = 0

    def on_written(self, count: int) -> int | None:
        """Record ``count`` bytes written; returns an offset to acknowledge, or None."""
        self.written += count
        if self.written - self.reported >= self.every:
            self.reported = self.written
            return self.written
        return None
