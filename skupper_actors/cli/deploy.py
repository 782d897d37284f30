"""What `system install` writes: a supervisord program or a systemd user unit that runs
`skupper-node run -n <namespace>`, and a record of it so `uninstall` removes exactly that."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from skupper_actors.api import HOME_ENV, Namespace
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.security._files import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    ensure_private_dir,
    write_file_atomically,
)

Manager = Literal["supervisord", "systemd"]
DEFAULT_SYSTEMD_UNIT_DIR = "~/.config/systemd/user"
#: Variables that decide where the namespace folder is and where the code is found: the
#: node must see the same ones as the CLI that installed it.
CARRIED_ENV = (HOME_ENV, "XDG_DATA_HOME", "PYTHONPATH")
RECORD_NAME = "system-install.json"


def program_name(namespace: Namespace) -> str:
    return f"skupper-{namespace.name}"


def log_dir(namespace: Namespace) -> Path:
    return namespace.runtime_dir / "logs"


def log_file(namespace: Namespace) -> Path:
    return log_dir(namespace) / "node.log"


def pid_file(namespace: Namespace) -> Path:
    return namespace.state_dir / "node.pid"


def node_command(namespace: Namespace) -> list[str]:
    """`skupper-node run -n <ns>`, by absolute path so a process manager finds it.

    The script next to this interpreter wins (same virtualenv), then one on PATH, then
    `python -m skupper_actors.node_cli` with this interpreter.
    """
    beside = Path(sys.executable).parent / "skupper-node"
    if beside.is_file():
        program = [str(beside)]
    elif found := shutil.which("skupper-node"):
        program = [found]
    else:
        program = [sys.executable, "-m", "skupper_actors.node_cli"]
    return [*program, "run", "-n", namespace.name]


def carried_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {key: environ[key] for key in CARRIED_ENV if environ.get(key)}


def supervisor_program(
    namespace: Namespace, command: list[str], environ: Mapping[str, str]
) -> str:
    """A supervisord `[program:skupper-<ns>]` section; supervisord restarts the node if it dies."""

    def escape(text: str) -> str:  # supervisord expands %(name)s in values
        return text.replace("%", "%%")

    lines = [
        f"; Written by 'skupper -n {namespace.name} system install'; "
        "'skupper system uninstall' removes it.",
        f"[program:{program_name(namespace)}]",
        f"command={escape(shlex.join(command))}",
        f"directory={escape(str(namespace.root))}",
    ]
    carried = carried_environment(environ)
    if carried:
        pairs = ",".join(f'{key}="{escape(value)}"' for key, value in carried.items())
        lines.append(f"environment={pairs}")
    lines += [
        "autostart=true",
        "autorestart=true",
        "startsecs=1",
        "startretries=10",
        "stopsignal=TERM",
        "stopwaitsecs=15",
        "stopasgroup=true",
        "killasgroup=true",
        "redirect_stderr=true",
        f"stdout_logfile={escape(str(log_file(namespace)))}",
        "stdout_logfile_maxbytes=10MB",
        "stdout_logfile_backups=3",
    ]
    return "\n".join(lines) + "\n"


def systemd_unit(namespace: Namespace, command: list[str], environ: Mapping[str, str]) -> str:
    """A systemd user service that runs the node and restarts it if it dies."""
    lines = [
        f"# Written by 'skupper -n {namespace.name} system install --systemd'; "
        "'skupper system uninstall' removes it.",
        "[Unit]",
        f"Description=skupper-actors site (namespace {namespace.name})",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={shlex.join(command)}",
        f"WorkingDirectory={namespace.root}",
    ]
    lines += [
        f'Environment="{key}={value}"' for key, value in carried_environment(environ).items()
    ]
    lines += [
        "Restart=always",
        "RestartSec=1",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=15",
        f"StandardOutput=append:{log_file(namespace)}",
        "StandardError=inherit",
        "",
        "[Install]",
        "WantedBy=default.target",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Installation:
    """What install wrote, kept in runtime/state so the other commands know the manager."""

    manager: Manager
    path: str
    supervisorctl_config: str | None = None

    @property
    def unit(self) -> str:
        return Path(self.path).name


def record_path(namespace: Namespace) -> Path:
    return namespace.state_dir / RECORD_NAME


def read_installation(namespace: Namespace) -> Installation | None:
    path = record_path(namespace)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Installation(
            manager=data["manager"],
            path=data["path"],
            supervisorctl_config=data.get("supervisorctl_config"),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CliError(ExitCode.VALIDATION, f"{path}: unreadable install record: {error}") from None


def write_installation(namespace: Namespace, installation: Installation) -> None:
    ensure_private_dir(namespace.state_dir)
    text = json.dumps(asdict(installation), indent=2) + "\n"
    write_file_atomically(record_path(namespace), text.encode(), mode=PRIVATE_FILE_MODE)


def write_config_file(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomically(path, text.encode("utf-8"), mode=PUBLIC_FILE_MODE)
    except OSError as error:
        raise CliError(ExitCode.SYSTEM, f"cannot write {path}: {error}") from None


def expand(path: str, environ: Mapping[str, str]) -> Path:
    """`~` from the environment's HOME (so tests with their own HOME work)."""
    if path.startswith("~"):
        home = environ.get("HOME") or str(Path.home())
        return Path(home + path[1:]).absolute()
    return Path(path).absolute()
