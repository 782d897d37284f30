"""Exit codes and the one error type commands raise: one line, no traceback."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What `skupper` exits with; each class of failure has its own code."""

    OK = 0
    #: the resource or the node reported an error (the message says which)
    FAILED = 1
    #: a bad command line (click's own code for usage errors)
    USAGE = 2
    #: no such resource, namespace, file or installation
    NOT_FOUND = 3
    #: a resource or file that does not pass validation
    VALIDATION = 4
    #: the resource did not reach the state waited for within --timeout
    TIMEOUT = 5
    #: the namespace's node does not answer on its management socket
    NODE_UNREACHABLE = 6
    #: the resource (or the site of the namespace) already exists, or a node already runs it
    ALREADY_EXISTS = 7
    #: a process manager or file-system operation failed
    SYSTEM = 8
    #: interrupted (Ctrl-C)
    INTERRUPTED = 130


EXIT_CODE_HELP = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "the resource or the node reported an error",
    ExitCode.USAGE: "usage error (bad command, option or argument)",
    ExitCode.NOT_FOUND: "no such resource, namespace, file or installation",
    ExitCode.VALIDATION: "invalid resource or file",
    ExitCode.TIMEOUT: "timed out waiting (--timeout)",
    ExitCode.NODE_UNREACHABLE: "the namespace's node is not running or does not answer",
    ExitCode.ALREADY_EXISTS: "already exists, or another node already runs the site",
    ExitCode.SYSTEM: "process manager or file-system failure",
    ExitCode.INTERRUPTED: "interrupted",
}


class CliError(Exception):
    """A failure to report as one line on stderr and exit with `code`."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def exit_codes_epilog() -> str:
    """The exit-code table for `skupper --help`."""
    lines = ["\b", "Exit codes:"]
    lines += [f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_HELP.items()]
    return "\n".join(lines)
