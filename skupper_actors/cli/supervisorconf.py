"""Which supervisord `system install` talks to, and whether that supervisord will read the
program file install writes.

The configuration is, in this order: the one named with `--supervisorctl-config`; the
user's own (`~/.config/supervisor/supervisord.conf`); the one a running supervisord of this
user was started with (from /proc); as root, the system's (`/etc/supervisor/supervisord.conf`
on Debian, `/etc/supervisord.conf` elsewhere). supervisord reads a program file only when a
glob of its `[include] files =` matches it, so install checks that before writing.
"""

from __future__ import annotations

import configparser
import fnmatch
import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from skupper_actors.cli.errors import CliError, ExitCode

USER_CONFIG = "~/.config/supervisor/supervisord.conf"
USER_CONF_DIR = "~/.config/supervisor/conf.d"
SYSTEM_CONFIGS = ("/etc/supervisor/supervisord.conf", "/etc/supervisord.conf")
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisordConfig:
    """What install needs from a supervisord configuration file."""

    path: Path
    #: `[include] files =`, as absolute glob patterns
    includes: tuple[str, ...]
    #: `[supervisorctl] serverurl` (or the `[unix_http_server]` socket), if any
    server_url: str | None
    #: how it was found, for messages ("--supervisorctl-config", "running supervisord", ...)
    found_by: str

    @property
    def socket(self) -> Path | None:
        if self.server_url and self.server_url.startswith("unix://"):
            return Path(self.server_url[len("unix://"):])
        return None

    def reads(self, program_file: Path) -> bool:
        """Whether supervisord's [include] globs match the file."""
        return any(fnmatch.fnmatchcase(str(program_file), glob) for glob in self.includes)

    def include_folder(self) -> Path | None:
        """The folder of the first include glob that reads `<folder>/skupper-x.conf`."""
        for glob in self.includes:
            folder, _, name = glob.rpartition("/")
            if folder and not _GLOB.search(folder) and fnmatch.fnmatchcase("skupper-x.conf", name):
                return Path(folder)
        return None

    def answering(self) -> bool:
        """Whether a supervisord listens on the configuration's unix socket now."""
        path = self.socket
        if path is None:
            return self.server_url is not None  # an http:// server: let supervisorctl say
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2.0)
            try:
                probe.connect(str(path))
            except OSError:
                return False
        return True


def expand_home(path: str, environ: Mapping[str, str]) -> Path:
    """`~` from the environment's HOME (so tests with their own HOME work)."""
    if path.startswith("~"):
        home = environ.get("HOME") or str(Path.home())
        return Path(home + path[1:]).absolute()
    return Path(path).absolute()


def read_config(path: Path, environ: Mapping[str, str], found_by: str) -> SupervisordConfig:
    """Parse the parts install needs; an unreadable file is a one-line CliError."""
    parser = configparser.RawConfigParser(
        inline_comment_prefixes=(";", "#"), strict=False, interpolation=None
    )
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except FileNotFoundError:
        raise CliError(
            ExitCode.NOT_FOUND, f"supervisord configuration {path} does not exist"
        ) from None
    except (OSError, UnicodeDecodeError, configparser.Error) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CliError(
            ExitCode.SYSTEM, f"cannot read supervisord configuration {path}: {first}"
        ) from None
    here = str(path.parent)

    def expand(value: str) -> str:
        value = value.replace("%(here)s", here)
        return re.sub(
            r"%\(ENV_(\w+)\)s", lambda match: environ.get(match.group(1), ""), value
        )

    includes: list[str] = []
    if parser.has_option("include", "files"):
        for word in expand(parser.get("include", "files")).split():
            glob = str(expand_home(word, environ)) if word.startswith("~") else word
            includes.append(os.path.normpath(os.path.join(here, glob)))
    server_url = None
    if parser.has_option("supervisorctl", "serverurl"):
        server_url = expand(parser.get("supervisorctl", "serverurl")).strip()
    elif parser.has_option("unix_http_server", "file"):
        server_url = "unix://" + os.path.join(
            here, expand(parser.get("unix_http_server", "file")).strip()
        )
    return SupervisordConfig(
        path=path, includes=tuple(includes), server_url=server_url, found_by=found_by
    )


def running_configs(uid: int | None = None, proc: Path = Path("/proc")) -> list[Path]:
    """The configuration files of the supervisord processes this user runs."""
    uid = os.getuid() if uid is None else uid
    found: list[Path] = []
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            argv = [a.decode(errors="replace") for a in
                    (entry / "cmdline").read_bytes().split(b"\0") if a]
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if not any(Path(word).name == "supervisord" for word in argv[:2]):
            continue
        config = _config_argument(argv)
        if config is not None:
            path = (cwd / config).absolute()
            if path not in found:
                found.append(path)
    return found


def _config_argument(argv: list[str]) -> str | None:
    for index, word in enumerate(argv):
        if word in ("-c", "--configuration") and index + 1 < len(argv):
            return argv[index + 1]
        for prefix in ("--configuration=", "-c"):
            if word.startswith(prefix) and len(word) > len(prefix):
                return word[len(prefix):]
    return None


def find_config(
    explicit: str | None,
    environ: Mapping[str, str],
    *,
    running: Iterable[Path] | None = None,
    system_configs: Iterable[str] = SYSTEM_CONFIGS,
    is_root: bool | None = None,
) -> SupervisordConfig:
    """The supervisord configuration install should use (see the module's docstring)."""
    if explicit:
        return read_config(expand_home(explicit, environ), environ, "--supervisorctl-config")
    user = expand_home(USER_CONFIG, environ)
    if user.is_file():
        return read_config(user, environ, "your configuration")
    live = [path for path in (running_configs() if running is None else running)
            if path.is_file() and os.access(path, os.R_OK)]
    if len(live) > 1:
        raise CliError(
            ExitCode.SYSTEM,
            f"several supervisord run ({', '.join(map(str, live))}): pick one with "
            "--supervisorctl-config FILE",
        )
    if live:
        return read_config(live[0], environ, "the running supervisord")
    root = os.geteuid() == 0 if is_root is None else is_root
    if root:
        for candidate in system_configs:
            if Path(candidate).is_file():
                return read_config(Path(candidate), environ, "the system's supervisord")
    where = f"no {USER_CONFIG}" + ("" if root else ", and only root uses the system's")
    raise CliError(
        ExitCode.NOT_FOUND,
        f"no supervisord configuration found (no supervisord of yours runs, {where}): "
        f"pass --supervisorctl-config FILE, or use --systemd",
    )


def check_reads(config: SupervisordConfig, folder: Path | None, program: str) -> Path:
    """The program file's path in `folder` (default: the folder [include] reads).

    Fails with one line naming the [include] line or flag that fixes it when supervisord
    would not read the file.
    """
    if folder is None:
        folder = config.include_folder()
        if folder is None:
            raise CliError(
                ExitCode.SYSTEM,
                f"supervisord's configuration {config.path} includes no folder of *.conf "
                f"files: add \"[include]\" with \"files = {USER_CONF_DIR}/*.conf\" to it, "
                f"or name one it includes with --supervisor-conf-dir",
            )
        return folder / f"{program}.conf"
    path = folder / f"{program}.conf"
    if not config.reads(path):
        included = config.include_folder()
        other = f" ({included})" if included else ""
        raise CliError(
            ExitCode.SYSTEM,
            f"supervisord's configuration {config.path} would not read {path}: add "
            f"\"files = {folder}/*.conf\" to its [include] section, or leave out "
            f"--supervisor-conf-dir to use the folder it includes{other}",
        )
    return path


_CLASS_ERROR = re.compile(
    r"<class '(?:\w+\.)*(\w+)'>,\s*(?:\[Errno \d+\]\s*)?(.*?)(?::\s*file:.*)?$"
)


def explain_output(output: str, config: str | None) -> str:
    """supervisorctl's last words as one line for a person: no `<class ...>`, no paths
    into supervisor's own source."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("For help, use")]
    if not lines:
        return "no output"
    where = f" (supervisorctl -c {config})" if config else ""
    for line in lines:
        match = _CLASS_ERROR.search(line)
        if match is None:
            continue
        kind, text = match.group(1), match.group(2).strip()
        if kind == "FileNotFoundError":
            return f"supervisord is not running: its socket does not exist{where}"
        if kind == "ConnectionRefusedError":
            return f"supervisord is not running: its socket refuses connections{where}"
        if kind == "PermissionError":
            return (f"no permission to use supervisord's socket{where}: run as the user "
                    "supervisord runs as, or as root")
        return f"{kind}: {text}" if text else kind
    last = lines[-1]
    if last.endswith(" no such file"):
        return f"supervisord is not running: no socket at {last[:-len(' no such file')]}"
    if last.endswith(" refused connection"):
        return f"supervisord is not running: {last[:-len(' refused connection')]} refuses " \
            "connections"
    if "Traceback" in last or "<class" in last:
        return "supervisorctl failed (see its output with supervisorctl itself)"
    return last.removeprefix("Error: ").removeprefix("error: ")
