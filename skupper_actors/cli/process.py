"""Running the node: as a background process with a pid file, or through supervisorctl or
systemctl when `system install` put it under one of them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from skupper_actors.api import Namespace
from skupper_actors.cli.deploy import log_dir, log_file, node_command, pid_file
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.supervisorconf import explain_output
from skupper_actors.management import ManagementClient, ManagementError, NodeStatus
from skupper_actors.security._files import ensure_private_dir

POLL = 0.1
#: The state of a program supervisord has not read yet (before `system start`).
NOT_LOADED = "NOT_LOADED"


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not; our own dead children are reaped here)."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_node_of(pid: int, namespace: Namespace) -> bool:
    """Whether `pid` is this namespace's node (a pid file can outlive its process)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)
    words = [a.decode(errors="replace") for a in argv if a]
    return "run" in words and namespace.name in words and _alive(pid)


def background_pid(namespace: Namespace) -> int | None:
    """The pid of the node started in the background, if it still runs."""
    try:
        pid = int(pid_file(namespace).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_node_of(pid, namespace) else None


def log_tail(namespace: Namespace, lines: int = 15) -> str:
    try:
        text = log_file(namespace).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def answering(namespace: Namespace, timeout: float = 1.0) -> NodeStatus | None:
    """The node's status if it answers on its management socket now."""
    try:
        return ManagementClient(namespace.runtime_dir, timeout=timeout).status()
    except ManagementError:
        return None


def wait_answering(
    namespace: Namespace,
    timeout: float,
    pid: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> NodeStatus:
    """Wait until the node answers management; fail early if process `pid` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if progress is not None:
            progress("")
        status = answering(namespace, timeout=min(1.0, max(0.1, deadline - time.monotonic())))
        if status is not None:
            return status
        if pid is not None and not _alive(pid):
            raise CliError(
                ExitCode.FAILED,
                f"the node of namespace {namespace.name!r} exited; its log ends with:\n"
                + log_tail(namespace),
            )
        if time.monotonic() >= deadline:
            raise CliError(
                ExitCode.TIMEOUT,
                f"the node of namespace {namespace.name!r} did not answer within {timeout:g}s "
                f"(log: {log_file(namespace)})",
            )
        time.sleep(POLL)


def start_background(namespace: Namespace, environ: Mapping[str, str]) -> int:
    """Start `skupper-node run -n <ns>` detached, log to runtime/logs/node.log; its pid."""
    namespace.ensure_layout()
    ensure_private_dir(log_dir(namespace))
    with open(log_file(namespace), "ab") as log:
        try:
            process = subprocess.Popen(
                node_command(namespace),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=namespace.root,
                env=dict(environ),
                start_new_session=True,  # survives the terminal that started it
            )
        except OSError as error:
            raise CliError(ExitCode.SYSTEM, f"cannot start the node: {error}") from None
    pid_file(namespace).write_text(f"{process.pid}\n")
    # Popen would warn when collected while the child runs; the child is meant to outlive us.
    process.returncode = 0
    return process.pid


def stop_background(
    namespace: Namespace,
    pid: int,
    timeout: float,
    progress: Callable[[str], None] | None = None,
) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True if it stopped on SIGTERM."""
    graceful = True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if progress is not None:
            progress("SIGTERM sent" if graceful else "SIGKILL sent")
        if time.monotonic() >= deadline:
            graceful = False
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
        time.sleep(POLL)
    with contextlib.suppress(FileNotFoundError):
        pid_file(namespace).unlink()
    return graceful


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise CliError(ExitCode.SYSTEM, f"{name} is not installed")
    return found


def run_tool(
    command: Sequence[str], environ: Mapping[str, str], timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(command),
            capture_output=True,
            text=True,
            env=dict(environ),
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CliError(ExitCode.SYSTEM, f"{command[0]} did not finish in {timeout:g}s") from None
    except OSError as error:
        raise CliError(ExitCode.SYSTEM, f"cannot run {command[0]}: {error}") from None


def supervisorctl(
    config: str | None, args: Sequence[str], environ: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    command = [_tool("supervisorctl"), *(["-c", config] if config else []), *args]
    return run_tool(command, environ)


def supervisor_state(config: str | None, program: str, environ: Mapping[str, str]) -> (
    tuple[str, int | None]
):
    """The program's state word (RUNNING, STOPPED, ...) and pid, from `supervisorctl status`.

    supervisord not answering is a SYSTEM error with supervisorctl's own words.
    """
    result = supervisorctl(config, ["status", program], environ)
    words = result.stdout.split()
    if len(words) >= 2 and words[0] == program:
        pid = None
        if "pid" in words:
            with contextlib.suppress(ValueError, IndexError):
                pid = int(words[words.index("pid") + 1].rstrip(","))
        return words[1], pid
    if "no such process" in result.stdout + result.stderr:
        return NOT_LOADED, None  # installed, but supervisord has not read the file yet
    raise CliError(
        ExitCode.SYSTEM,
        f"supervisorctl status {program}: "
        f"{explain_output(result.stdout + result.stderr, config)}",
    )


def systemctl(args: Sequence[str], environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return run_tool([_tool("systemctl"), "--user", *args], environ)


def checked(
    result: subprocess.CompletedProcess[str], what: str, config: str | None = None
) -> str:
    """The tool's output, or a SYSTEM error with its words (made readable) when it failed."""
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        last = explain_output(output, config) if output else f"exit status {result.returncode}"
        raise CliError(ExitCode.SYSTEM, f"{what}: {last}")
    return output
