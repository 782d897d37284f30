"""Actors: one greenlet, one bounded mailbox, typed messages.

The mailbox (kernel.mailbox) has no bound of its own: the bound applies to ``tell``
and ``ask`` (user messages) only, so that kernel messages (``Down``, stop requests) are
never refused and never lost, and arrive in order with the user messages before them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NoReturn, TypeVar, cast

import gevent
import gevent.event
import structlog
from gevent import Greenlet

from .clock import REAL_CLOCK, Cancellable, Clock
from .errors import ActorDead, AskTimeout, MailboxFull, StartFailed
from .exited import ActorStatistics, Exited
from .mailbox import Mailbox
from .messages import Crashed, Down, ExitReason, Killed, Normal, Shutdown

if TYPE_CHECKING:
    from .registry import Registry

DEFAULT_MAILBOX_SIZE = 1000

_LOG = structlog.get_logger("skupper_actors.kernel")
#: whether debug events are logged at all (``set_debug_logging``): a per-connection
#: actor's actor_started / actor_stopped are debug events, and asking structlog's lazy
#: logger to drop one binds a logger first, twice per connection
_debug_logging = True


def set_debug_logging(enabled: bool) -> None:
    """Tell the kernel whether the process logs debug events (the logging set-up does)."""
    global _debug_logging
    _debug_logging = enabled

_ids = itertools.count(1)

#: The messages an actor takes; an ``ActorRef[M]`` accepts only ``M`` in ``tell`` and ``ask``.
M = TypeVar("M", contravariant=True)


class _Ask:
    """An ask travelling through a mailbox, with the slot for its reply."""

    __slots__ = ("message", "result")

    def __init__(self, message: object) -> None:
        self.message = message
        self.result: gevent.event.AsyncResult[Any] = gevent.event.AsyncResult()


class _Stop:
    __slots__ = ()


_STOP = _Stop()


class _StopNormal:
    """``stop_soon``'s message when it must wait behind others: leave normally."""

    __slots__ = ()


_STOP_NORMAL = _StopNormal()


class _StopSelf(BaseException):
    """Raised inside an actor by ``stop_self`` to leave its loop normally."""


class ActorRef(Generic[M]):
    """The only handle other code holds on an actor.

    Generic over the messages the actor takes: ``ActorRef[LinkMessage]`` lets a type
    checker refuse a message of another actor; ``ActorRef[Any]`` (or a bare ``ActorRef``
    outside strict modules) takes anything, as before. The parameter is checked only
    statically: at run time every ref is the same class.
    """

    __slots__ = ("_actor", "_bound", "_kernel_queue", "path")

    def __init__(self, actor: Actor) -> None:
        self._actor = actor
        self.path = actor.path
        self._kernel_queue = actor._kernel_queue
        # -1 once the actor is dead, so that tell's one comparison covers both cases.
        self._bound = actor.mailbox_size

    def __repr__(self) -> str:
        return f"<ActorRef {self.path}>"

    @property
    def alive(self) -> bool:
        return not self._actor._kernel_dead

    def tell(self, message: M) -> None:
        """Queue ``message``; never blocks.

        Raises :class:`MailboxFull` when the mailbox holds its bound of user messages and
        :class:`ActorDead` when the actor has exited. ``tell_nowait`` is the same call under
        the name trio would give it; ``wait_tell`` is the blocking variant.
        """
        queue = self._kernel_queue
        if queue.qsize() >= self._bound:
            self._refuse()
        queue.put_nowait(message)

    tell_nowait = tell

    def _refuse(self) -> NoReturn:
        """Why a full (or dead: bound -1) mailbox takes no message."""
        actor = self._actor
        if actor._kernel_dead:
            raise ActorDead(self.path, actor._kernel_exit_reason)
        raise MailboxFull(self.path, self._bound)

    def tell_lazy(self, message: M) -> None:
        """``tell`` without waking the actor: the message waits in the mailbox, in
        order, until one told with ``tell`` (or ``ask``, or a stop) wakes the actor.

        For facts that may wait for an actor that is woken regularly anyway (a tick):
        a wake-up per fact (a greenlet switch there and back) costs more than handling
        it. Raises as ``tell`` does; an actor that nothing else wakes never reads it.
        """
        queue = self._kernel_queue
        if queue.qsize() >= self._bound:
            self._refuse()
        queue.put_lazy(message)

    def wait_tell(self, message: M, timeout: float | None = None) -> None:
        """Queue ``message``, waiting for room while the mailbox is full.

        For producers that want back-pressure (a socket reader feeding a slow actor).
        Raises :class:`MailboxFull` if there is still no room after ``timeout`` seconds.
        """
        actor = self._actor
        deadline = None if timeout is None else actor.clock.now() + timeout
        while self._kernel_queue.qsize() >= self._bound and not actor._kernel_dead:
            remaining = None if deadline is None else deadline - actor.clock.now()
            if remaining is not None and remaining <= 0:
                raise MailboxFull(self.path, self._bound)
            room = gevent.event.Event()
            actor._kernel_room_waiters.append(room)
            room.wait(remaining)
        self.tell(message)

    def ask(self, message: M, timeout: float = 5.0) -> Any:
        """Send ``message`` and wait for the value ``on_receive`` returns for it.

        Raises :class:`AskTimeout` after ``timeout`` seconds, :class:`ActorDead` at once
        if the actor is dead or dies before answering, :class:`MailboxFull` if it is full.
        """
        actor = self._actor
        if actor._kernel_greenlet is gevent.getcurrent():
            raise RuntimeError(f"{self.path} asked itself; that would deadlock")
        envelope = _Ask(message)
        cast("ActorRef[Any]", self).tell(envelope)  # the envelope, not an M, goes in
        try:
            return envelope.result.get(timeout=timeout)
        except gevent.Timeout:
            raise AskTimeout(self.path, message, timeout) from None

    def monitor(self, watcher: ActorRef[Any]) -> None:
        """Deliver ``Down(ref=self, reason)`` to ``watcher`` when this actor exits."""
        actor = self._actor
        if actor._kernel_dead:
            watcher._put_system(Down(ref=self, reason=actor._kernel_exit_reason or Normal()))
        else:
            actor._kernel_monitors[id(watcher)] = watcher

    def call_on_exit(self, call: Callable[[ActorRef[Any], ExitReason], None]) -> None:
        """Call ``call(ref, reason)`` when this actor exits, from wherever its exit runs
        (its greenlet, or a loop callback for one that ``wakes_inline``); at once if it
        is dead already. For a supervisor's temporary children: forgetting a child needs
        no ``Down`` through the supervisor's mailbox and no wake-up of its greenlet.
        ``call`` must not block, and it sees the caller's state as it is at that moment
        (nothing else runs while it does)."""
        actor = self._actor
        if actor._kernel_dead:
            call(self, actor._kernel_exit_reason or Normal())
        elif actor._kernel_exit_calls is None:
            actor._kernel_exit_calls = [call]
        else:
            actor._kernel_exit_calls.append(call)

    def demonitor(self, watcher: ActorRef[Any]) -> None:
        self._actor._kernel_monitors.pop(id(watcher), None)

    def stop(self, timeout: float | None = 5.0) -> ExitReason:
        """Ask the actor to stop after the messages already queued; kill it after ``timeout``.

        ``timeout=0`` kills at once (brutal). Returns the exit reason.
        """
        actor = self._actor
        if not actor._kernel_dead and actor._kernel_launched:
            if actor._kernel_greenlet is gevent.getcurrent():
                raise RuntimeError(f"{self.path} cannot wait for its own stop; use stop_self()")
            if timeout == 0:
                actor._kernel_kill()
            else:
                actor._kernel_queue.put_nowait(_STOP)
                if not actor._kernel_exited.wait(timeout):
                    actor._kernel_kill()
        actor._kernel_exited.wait()
        assert actor._kernel_exit_reason is not None
        return actor._kernel_exit_reason

    def wait(self, timeout: float | None = None) -> ExitReason | None:
        """Wait until the actor exits; returns its reason, or None on timeout."""
        self._actor._kernel_exited.wait(timeout)
        return self._actor._kernel_exit_reason

    def statistics(self) -> Any:
        return self._actor.statistics()

    def _put_system(self, message: object) -> None:
        if not self._actor._kernel_dead:
            self._actor._kernel_queue.put_nowait(message)


class Actor:
    """Base class: override ``on_start``, ``on_receive`` and ``on_stop``.

    ``on_start`` runs in the actor's greenlet; the actor counts as started (ready) when
    it returns. An exception there fails the start. ``on_receive``'s return value is the
    reply to an ask. Any exception from ``on_receive`` crashes the actor: the kernel logs
    it, fails pending asks with :class:`ActorDead` and tells the monitors (the supervisor).
    """

    mailbox_size: int = DEFAULT_MAILBOX_SIZE
    #: An actor that keeps no greenlet while its mailbox is empty (one per TCP connection:
    #: a parked greenlet's saved stack is most of an idle actor's ~9 KiB). ``on_start``
    #: runs in the greenlet that starts it and must not block; each burst of messages
    #: gets a greenlet that ends when the mailbox is empty again (Erlang's hibernate).
    hibernates: ClassVar[bool] = False
    #: With ``hibernates``: none of its handlers (``on_receive``, ``on_stop``) ever
    #: blocks, so a burst of messages is handled in a loop callback, with no greenlet at
    #: all (a TCP connection's end: a greenlet's start and its stack cost more than the
    #: handler). A handler that does block crashes the actor (gevent refuses to block
    #: the hub).
    wakes_inline: ClassVar[bool] = False
    #: log level of actor_started / actor_stopped; per-connection actors keep it at debug.
    lifecycle_log_level: ClassVar[str] = "info"
    #: on exit its refs let it go (they keep an ``Exited`` instead): an actor made per
    #: connection is then freed by reference counting, not left as cyclic garbage (it
    #: and its ref point at each other) with everything it held until a collection
    releases_on_exit: ClassVar[bool] = False

    def __init__(self, *, mailbox_size: int | None = None) -> None:
        if mailbox_size is not None:
            self.mailbox_size = mailbox_size
        self.name = f"{type(self).__name__}-{next(_ids)}"
        self.path = self.name
        self.clock: Clock = REAL_CLOCK
        self._kernel_log: Any = None
        self._kernel_log_context: dict[str, object] = {}
        self._kernel_queue = Mailbox()
        self._kernel_room_waiters: list[gevent.event.Event] = []
        self.ref: ActorRef[Any] = ActorRef(self)
        self._kernel_greenlet: Greenlet[Any, Any] | None = None
        self._kernel_launched = False
        self._kernel_started = False
        self._kernel_ready = gevent.event.Event()
        self._kernel_exited = gevent.event.Event()
        self._kernel_dead = False
        self._kernel_exit_reason: ExitReason | None = None
        self._kernel_start_error: BaseException | None = None
        self._kernel_monitors: dict[int, ActorRef[Any]] = {}
        self._kernel_exit_calls: list[Callable[[ActorRef[Any], ExitReason], None]] | None = None
        self._kernel_handled = 0
        self._kernel_timers: set[Cancellable] | None = None  # made by the first send_after
        self._kernel_registry: Registry | None = None

    # -- hooks -------------------------------------------------------------------------
    def on_start(self) -> None:
        """Prepare; the actor is ready when this returns."""

    def on_receive(self, message: object) -> Any:
        """Handle one message; the return value answers an ask."""
        raise TypeError(f"{self.path} cannot handle {type(message).__name__}")

    def on_stop(self, reason: ExitReason) -> None:
        """Release resources; runs on every exit, crashes included."""

    # -- for subclasses ------------------------------------------------------------------
    @property
    def log(self) -> Any:
        """A structlog logger bound to this actor's path (made on first use)."""
        if self._kernel_log is None:
            self._kernel_log = _LOG.bind(actor=self.path, **self._kernel_log_context)
        return self._kernel_log

    def _lifecycle(self, level: str, event: str, **values: object) -> None:
        if level == "debug" and not _debug_logging:
            return
        if level == "debug" and self._kernel_log is None:
            # per-connection actors: skip binding a logger just to drop a debug line
            _LOG.debug(event, actor=self.path, **self._kernel_log_context, **values)
        else:
            getattr(self.log, level)(event, **values)

    def stop_self(self) -> None:
        """Leave the actor loop with reason Normal after the current message."""
        raise _StopSelf()

    def stop_soon(self) -> None:
        """Leave with reason Normal once the messages queued so far are handled, from
        anywhere in the actor's own code (a callback included) and without blocking.

        An actor that ``wakes_inline`` with nothing queued ends in a loop callback, no
        message through its mailbox (a TCP connection's end, once per connection);
        otherwise a message queued behind the others ends it as ``stop_self`` would.
        """
        if self.wakes_inline:
            gevent.get_hub().loop.run_callback(self._kernel_stop_soon)
        elif not self._kernel_dead:
            self._kernel_queue.put_nowait(_STOP_NORMAL)

    def _kernel_stop_soon(self) -> None:
        if self._kernel_dead:
            return
        if self._kernel_queue.qsize():
            self._kernel_queue.put_nowait(_STOP_NORMAL)  # after them (a wake is due)
            return
        self._kernel_exit(Normal(), self._kernel_started)

    def send_after(self, seconds: float, message: object) -> Cancellable:
        """Tell ``message`` to this actor after ``seconds`` (a timer; cancel to drop it)."""

        def fire() -> None:
            if self._kernel_timers is not None:
                self._kernel_timers.discard(timer)
            if not self._kernel_dead:
                self._kernel_queue.put_nowait(message)

        timer = self.clock.call_later(seconds, fire)
        if self._kernel_timers is None:
            self._kernel_timers = set()
        self._kernel_timers.add(timer)
        return timer

    def statistics(self) -> ActorStatistics:
        return ActorStatistics(
            path=self.path,
            alive=not self._kernel_dead,
            mailbox_depth=self._kernel_queue.qsize(),
            mailbox_bound=self.mailbox_size,
            messages_handled=self._kernel_handled,
        )

    # -- kernel ----------------------------------------------------------------------------
    def _launch(
        self,
        *,
        name: str | None,
        parent_path: str | None,
        clock: Clock | None,
        start_timeout: float | None,
        registry: Registry | None = None,
        log_context: dict[str, object] | None = None,
    ) -> ActorRef[Any]:
        if self._kernel_launched:
            raise RuntimeError(f"{self.path} was already started")
        self._kernel_launched = True
        if name is not None:
            self.name = name
        self.path = f"{parent_path}/{self.name}" if parent_path else self.name
        self.ref.path = self.path
        if clock is not None:
            self.clock = clock
        self._kernel_log_context = log_context or {}
        self._kernel_log = None
        if registry is not None:
            registry.register(self.name, self.ref)
            self._kernel_registry = registry
        if self.hibernates:
            self._kernel_run(first=True)
        else:
            self._kernel_greenlet = gevent.spawn(self._kernel_run, True)
            self._kernel_ready.wait(start_timeout)
        if self._kernel_start_error is not None or not self._kernel_ready.is_set():
            reason: object = self._kernel_start_error or f"no readiness within {start_timeout:g} s"
            if not self._kernel_dead:
                self._kernel_kill()
            raise StartFailed(self.path, reason) from self._kernel_start_error
        return self.ref

    def _kernel_run(self, first: bool = False) -> None:
        """Start (``first``) and/or handle messages until the exit, or until a
        hibernating actor's mailbox is empty (then it waits for ``_kernel_wake``)."""
        reason: ExitReason = Normal()
        ended = True
        try:
            if first:
                self.on_start()
                self._kernel_started = True
                self._kernel_ready.set()
                self._lifecycle(self.lifecycle_log_level, "actor_started")
                if self.hibernates:  # started in its starter's greenlet: messages get their own
                    ended = False
                    if self._kernel_queue.qsize():
                        self._kernel_wake()
                    else:
                        self._kernel_queue.wake = self._kernel_wake
                    return
            if self._kernel_loop():
                ended = False
                return
            reason = Shutdown()
        except _StopSelf:
            reason = Normal()
        except gevent.GreenletExit:
            reason = Killed()
            if self.hibernates and first and not self._kernel_started:
                raise  # the starting greenlet was killed: it is not the actor's to catch
        except BaseException as error:  # the kernel is where crashes are caught
            reason = Crashed(error)
            if self._kernel_started:
                self.log.error("actor_crashed", reason=str(reason), exc_info=error)
            else:
                self._kernel_start_error = error
                if isinstance(error, StartFailed):  # a child's, logged with its trace already
                    self.log.error("actor_start_failed", reason=str(reason))
                else:
                    self.log.error("actor_start_failed", reason=str(reason), exc_info=error)
        finally:
            if ended and not self._kernel_dead:
                self._kernel_exit(reason, self._kernel_started)

    def _kernel_wake(self) -> None:
        """A message for a hibernating actor: a greenlet to handle it (and any after),
        or a loop callback for an actor that ``wakes_inline``."""
        if self.wakes_inline:
            gevent.get_hub().loop.run_callback(self._kernel_run_inline)
        else:
            self._kernel_greenlet = gevent.spawn(self._kernel_run)

    def _kernel_run_inline(self) -> None:
        if not self._kernel_dead:  # else killed while this callback waited
            self._kernel_run()

    def _kernel_kill(self) -> None:
        """End the actor at once (reason Killed), whether a greenlet runs it or not."""
        greenlet = self._kernel_greenlet
        if greenlet is not None and not greenlet.dead and greenlet is not gevent.getcurrent():
            greenlet.kill(block=True)
        if not self._kernel_dead:  # hibernating, or killed before its greenlet ran
            self._kernel_queue.wake = None
            self._kernel_exit(Killed(), self._kernel_started)

    def _kernel_loop(self) -> bool:
        """Handle messages; True when a hibernating actor's mailbox ran empty."""
        queue = self._kernel_queue
        get = queue.get
        receive = self.on_receive
        waiters = self._kernel_room_waiters
        hibernates = self.hibernates
        while True:
            if hibernates and not queue.qsize():
                self._kernel_greenlet = None
                queue.wake = self._kernel_wake
                return True
            message = get()
            if waiters:
                for room in waiters:
                    room.set()
                waiters.clear()
            cls = type(message)
            if cls is _Ask:
                ask: _Ask = message
                self._kernel_current = ask
                ask.result.set(receive(ask.message))
                self._kernel_current = None
            elif cls is _Stop:
                return False
            elif cls is _StopNormal:
                raise _StopSelf()
            else:
                receive(message)
            self._kernel_handled += 1

    _kernel_current: _Ask | None = None

    def _kernel_exit(self, reason: ExitReason, started: bool) -> None:
        self._kernel_dead = True
        self._kernel_queue.wake = None
        self._kernel_exit_reason = reason
        self.ref._bound = -1
        timers, self._kernel_timers = self._kernel_timers, None
        for timer in list(timers or ()):
            timer.cancel()
        try:
            if started:
                self.on_stop(reason)
        except BaseException as error:  # a failing on_stop must not hide the exit
            self.log.error("actor_stop_hook_failed", exc_info=error)
        dead: ActorDead | None = None  # made only for an ask left unanswered
        if self._kernel_current is not None:
            dead = ActorDead(self.path, reason)
            self._kernel_current.result.set_exception(dead)
            self._kernel_current = None
        while not self._kernel_queue.empty():
            pending = self._kernel_queue.get_nowait()
            if type(pending) is _Ask:
                if dead is None:
                    dead = ActorDead(self.path, reason)
                pending.result.set_exception(dead)
        if self._kernel_registry is not None:
            self._kernel_registry.unregister(self.name, self.ref)
        if started:
            level = "info" if isinstance(reason, Normal | Shutdown) else "warning"
            if level == "info":
                level = self.lifecycle_log_level
            if level != "debug" or _debug_logging:
                self._lifecycle(level, "actor_stopped", reason=str(reason))
        self._kernel_ready.set()
        for room in self._kernel_room_waiters:
            room.set()
        self._kernel_exited.set()
        monitors = list(self._kernel_monitors.values())
        self._kernel_monitors.clear()
        if monitors:
            down = Down(ref=self.ref, reason=reason)
            for watcher in monitors:
                watcher._put_system(down)
        calls, self._kernel_exit_calls = self._kernel_exit_calls, None
        for call in calls or ():
            try:
                call(self.ref, reason)
            except Exception as error:  # one failing call must not skip the others
                self.log.error("actor_exit_call_failed", exc_info=error)
        if self.releases_on_exit:
            self.ref._actor = Exited(self)  # type: ignore[assignment]


def spawn(
    actor: Actor,
    *,
    name: str | None = None,
    clock: Clock | None = None,
    start_timeout: float | None = 10.0,
    registry: Registry | None = None,
    log_context: dict[str, object] | None = None,
) -> ActorRef[Any]:
    """Start a top-level actor and wait until it is ready (raises :class:`StartFailed`)."""
    return actor._launch(
        name=name,
        parent_path=None,
        clock=clock,
        start_timeout=start_timeout,
        registry=registry,
        log_context=log_context,
    )


ActorFactory = Callable[[], Actor]
