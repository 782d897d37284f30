"""structlog set-up for processes: JSON lines when not on a terminal, console otherwise."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

# structlog is imported where it is used: `skupper-node` reads LEVELS before it may
# re-execute itself, and should not pay for structlog's import twice.

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


#: told of every warning and error event (level, event dict), before it is rendered:
#: the node's VanflowActor makes LOG records of them
WARNING_HOOKS: list[Callable[[str, MutableMapping[str, Any]], None]] = []


def _run_warning_hooks(
    _: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if WARNING_HOOKS and method in ("warning", "error", "critical", "exception"):
        for hook in WARNING_HOOKS:
            hook(method, event)
    return event


def configure_logging(
    level: str = "info", *, json: bool | None = None, stream: TextIO | None = None, **context: str
) -> None:
    """Configure structlog once per process; ``context`` is bound into every event (site=...)."""
    import structlog

    out = stream or sys.stderr
    if json is None:
        json = not out.isatty()
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _run_warning_hooks,
    ]
    if context:
        fixed = dict(context)

        def add_context(_: object, __: str, event: dict[str, object]) -> dict[str, object]:
            for key, value in fixed.items():
                event.setdefault(key, value)
            return event

        processors.append(add_context)
    if json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # Plain tracebacks: rich ones render the source and the locals of every frame,
        # which takes long enough to stall the node's hub (and prints secrets in locals).
        processors.append(
            structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        )
    from skupper_actors.kernel import set_debug_logging

    set_debug_logging(LEVELS[level] <= logging.DEBUG)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
