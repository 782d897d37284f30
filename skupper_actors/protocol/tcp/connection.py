"""One TCP connection at the edge of the VAN as a state machine (sans-IO, after h11).

A connection has two halves, each ``OPEN`` until it becomes ``ENDED`` or ``ABORTED``:

- **send**: what the local socket says, carried away as our outgoing stream. A clean
  EOF on the socket ends the stream, announcing its length; a socket error aborts it.
- **receive**: the far end's stream, written to the local socket. It ends cleanly only
  when the far end ended its stream cleanly *and* the length it announced equals the
  bytes written to the socket; anything else aborts it.

Events move the halves by the two transition tables below (data, not code); each
transition carries the effects the actor performs (end or abort the stream, shut the
socket's write side, stop reading, stop the far sender). The machine is consulted on
state-changing events only; bytes pass by it (the actor counts them in the window and
the acknowledger it holds, the same work as before).

The clean-end rule lives in one place, ``TcpConnection.closing``: the socket closes
with a FIN only when both halves ENDED; as soon as one half is ABORTED the socket is
reset, so its peer never takes a truncated stream for a whole one.
"""

from __future__ import annotations

from enum import Enum

from .window import DEFAULT_ACK_EVERY, DEFAULT_WINDOW, Acknowledger, Window


class Half(Enum):
    OPEN = "open"
    ENDED = "ended"
    ABORTED = "aborted"


class Event(Enum):
    """What happens to a connection (the machine's input)."""

    LOCAL_END = "local_end"  # the socket read a clean EOF (its peer half-closed)
    LOCAL_FAIL = "local_fail"  # the socket failed reading or writing (reset by its peer)
    FAR_END = "far_end"  # the far stream ended cleanly, every announced byte written
    FAR_SHORT = "far_short"  # the far stream ended cleanly but bytes are missing
    FAR_ABORT = "far_abort"  # the far stream aborted (or the path carrying it ended)
    PATH_LOST = "path_lost"  # our outgoing stream's path ended under it
    STOP = "stop"  # the connection is stopped from outside (node stop, crash)


class Effect(Enum):
    """What the actor must do (the machine's output), in the order given."""

    STOP_READING = "stop_reading"
    END_STREAM = "end_stream"  # end our outgoing stream, announcing ``window.sent``
    ABORT_STREAM = "abort_stream"
    STOP_SENDER = "stop_sender"  # the far stream cannot be written: stop it at its sender
    SHUTDOWN_WRITE = "shutdown_write"  # EOF to the socket: every byte was delivered
    RESET = "reset"  # close the socket with a reset, now: the connection is over
    CLOSE = "close"  # close the socket with a FIN: both halves ended cleanly


class Closing(Enum):
    CLEAN = "clean"
    RESET = "reset"


_O, _E, _A = Half.OPEN, Half.ENDED, Half.ABORTED
_Fx = tuple[Effect, ...]
_ABORT_SEND: _Fx = (Effect.STOP_READING, Effect.ABORT_STREAM)

#: send half: (state, event) -> (next state, effects); absent pairs change nothing
SEND: dict[tuple[Half, Event], tuple[Half, _Fx]] = {
    (_O, Event.LOCAL_END): (_E, (Effect.STOP_READING, Effect.END_STREAM)),
    (_O, Event.LOCAL_FAIL): (_A, _ABORT_SEND),
    (_O, Event.FAR_SHORT): (_A, _ABORT_SEND),
    (_O, Event.FAR_ABORT): (_A, _ABORT_SEND),
    (_O, Event.PATH_LOST): (_A, (Effect.STOP_READING,)),  # nothing left to abort
    (_O, Event.STOP): (_A, _ABORT_SEND),
}

#: receive half: (state, event) -> (next state, effects); absent pairs change nothing
RECEIVE: dict[tuple[Half, Event], tuple[Half, _Fx]] = {
    (_O, Event.FAR_END): (_E, (Effect.SHUTDOWN_WRITE,)),
    (_O, Event.FAR_SHORT): (_A, ()),
    (_O, Event.FAR_ABORT): (_A, ()),
    (_O, Event.LOCAL_FAIL): (_A, (Effect.STOP_SENDER,)),
    (_O, Event.PATH_LOST): (_A, ()),  # both directions share one path
    (_O, Event.STOP): (_A, (Effect.STOP_SENDER,)),
}


def closing(send: Half, receive: Half) -> Closing | None:
    """The clean-end rule: how the socket closes, or None while it stays open.

    A FIN only when both halves ended cleanly (the receive half's clean end already
    checked every byte); a reset as soon as either aborted.
    """
    if send is Half.ABORTED or receive is Half.ABORTED:
        return Closing.RESET
    if send is Half.ENDED and receive is Half.ENDED:
        return Closing.CLEAN
    return None


class TcpConnection:
    """The state of one connection's two halves, its window and its acknowledger.

    ``window`` counts what the send half sent and the far end acknowledged; the
    ``acker`` counts bytes written to the socket. The actor updates both per chunk
    (they are the data path's counters, not events); everything else goes through
    ``handle`` or ``far_ended``.
    """

    __slots__ = ("acker", "closed", "receive", "send", "window")

    def __init__(self, window: int = DEFAULT_WINDOW, ack_every: int = DEFAULT_ACK_EVERY) -> None:
        self.send = Half.OPEN
        self.receive = Half.OPEN
        self.window = Window(window)
        self.acker = Acknowledger(ack_every)
        self.closed: Closing | None = None

    @property
    def finished(self) -> bool:
        return self.closed is not None

    def restart_send(self) -> None:
        """A new attempt carries the send half on a new stream: offsets from 0."""
        self.window = Window(self.window.size)

    def classify_far_end(self, length: int | None) -> Event:
        """The far stream ended cleanly: was every byte it announced written here?

        Call once every byte that arrived has been written to the socket.
        """
        if length is not None and length == self.acker.written:
            return Event.FAR_END
        return Event.FAR_SHORT

    def far_ended(self, length: int | None) -> list[Effect]:
        return self.handle(self.classify_far_end(length))

    def handle(self, event: Event) -> list[Effect]:
        """Apply ``event``; the effects to perform, in order (empty once closed)."""
        if self.closed is not None:
            return []
        effects: list[Effect] = []
        send = SEND.get((self.send, event))
        if send is not None:
            self.send, more = send
            effects += more
        receive = RECEIVE.get((self.receive, event))
        if receive is not None:
            self.receive, more = receive
            effects += more
        verdict = closing(self.send, self.receive)
        if verdict is Closing.RESET:
            if self.send is Half.OPEN:  # the socket goes: the send half goes with it
                self.send = Half.ABORTED
                effects += _ABORT_SEND
            if self.receive is Half.OPEN:
                self.receive = Half.ABORTED
                effects.append(Effect.STOP_SENDER)
            effects.append(Effect.RESET)
        elif verdict is Closing.CLEAN:
            effects.append(Effect.CLOSE)
        self.closed = verdict
        return effects

