"""What a command runs against: its streams and environment (an object, so tests pass
their own), and the namespace chosen with `-n`."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TextIO

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
    def spinner(self, text: str) -> Iterator[None]:
        """A spinner on stderr while the block runs, only when stderr is a terminal."""
        if not self.env.stderr_isatty:
            yield
            return
        from rich.console import Console

        console = Console(file=self.env.stderr, stderr=True)
        with console.status(text):
            yield
