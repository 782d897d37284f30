"""What a command runs against: its streams and environment (an object, so tests pass
their own), and the namespace chosen with `-n`."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from skupper_actors.api import DEFAULT_NAMESPACE, Namespace
from skupper_actors.cli.errors import CliError, ExitCode


@dataclass(slots=True, kw_only=True)
class CliEnv:
    """Streams and environment variables; `from_process` gives the real ones."""

    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    environ: Mapping[str, str]
    stdout_isatty: bool = False
    stderr_isatty: bool = False

    @classmethod
    def from_process(cls) -> CliEnv:
        return cls(
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdin=sys.stdin,
            environ=dict(os.environ),
            stdout_isatty=sys.stdout.isatty(),
            stderr_isatty=sys.stderr.isatty(),
        )


@dataclass(slots=True, kw_only=True)
class CliContext:
    """The click context object shared by every command of one invocation."""

    env: CliEnv
    namespace_name: str = DEFAULT_NAMESPACE
    _namespace: Namespace | None = field(default=None, repr=False)

    @property
    def namespace(self) -> Namespace:
        """The namespace folder (not created); a bad name is a usage error."""
        if self._namespace is None:
            try:
                self._namespace = Namespace.locate(self.namespace_name, environ=self.env.environ)
            except ValueError as error:
                raise CliError(ExitCode.USAGE, str(error)) from None
        return self._namespace

    def out(self, text: str = "", *, end: str = "\n") -> None:
        """Write to stdout (what scripts read)."""
        self.env.stdout.write(text + end)
        self.env.stdout.flush()

    def note(self, text: str) -> None:
        """Write a remark for the person at the terminal to stderr."""
        self.env.stderr.write(text + "\n")
        self.env.stderr.flush()

    @contextlib.contextmanager
    def progress(self, text: str) -> Iterator[Progress]:
        """Say what the block waits for: a spinner on a terminal, else plain lines.

        The block calls `update(state)` as it polls; off a terminal a line goes to stderr
        once the wait has lasted `Progress.QUIET` seconds, then one per change of state.
        """
        if not self.env.stderr_isatty:
            yield Progress(text, self.note)
            return
        from rich.console import Console

        console = Console(file=self.env.stderr, stderr=True)
        with console.status(text) as status:
            yield Progress(text, None, status)


class Progress:
    """The state of one wait, shown as it changes (see `CliContext.progress`)."""

    #: Waits shorter than this print nothing off a terminal.
    QUIET = 1.0

    def __init__(
        self,
        text: str,
        write: Callable[[str], None] | None,
        status: Any = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.text = text
        self._write = write
        self._status = status
        self._monotonic = monotonic
        self._started = monotonic()
        self._shown: str | None = None

    def update(self, state: str = "") -> None:
        line = f"{self.text} ({state})" if state else self.text
        if line == self._shown:
            return
        if self._status is not None:
            self._status.update(line)
            self._shown = line
        elif self._write is not None and self._monotonic() - self._started >= self.QUIET:
            self._write(line)
            self._shown = line
