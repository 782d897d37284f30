"""`skupper system install|uninstall`: the files written for supervisord and systemd, and
the supervisord configuration install finds and checks."""

from __future__ import annotations

import configparser
import shlex
import sys
from pathlib import Path

import pytest
from clikit import Cli

from skupper_actors.cli.errors import ExitCode

pytestmark = pytest.mark.timeout(60)


USER_CONFIG = """\
[unix_http_server]
file=%(here)s/s.sock

[supervisorctl]
serverurl=unix://%(here)s/s.sock   ; comment

[include]
files = {files}
"""


def user_config(home: Path, files: str | None = "conf.d/*.conf") -> Path:
    """The user's own ~/.config/supervisor/supervisord.conf (no supervisord runs it)."""
    config = home / ".config" / "supervisor" / "supervisord.conf"
    config.parent.mkdir(parents=True)
    text = USER_CONFIG.format(files=files)
    config.write_text(text if files is not None else text.split("[include]")[0])
    return config


@pytest.fixture
def site(cli: Cli, home: Path) -> Cli:
    cli("-n", "west", "site", "create", "west", "--wait", "none").check()
    user_config(home)
    return cli


def test_supervisord_program(site: Cli, home: Path) -> None:
    conf_dir = home / ".config" / "supervisor" / "conf.d"
    result = site("-n", "west", "system", "install")
    result.check()
    path = conf_dir / "skupper-west.conf"
    assert str(path) in result.out
    assert "supervisord.conf (your configuration)" in result.out
    assert "note: no supervisord answers for" in result.err
    parser = configparser.RawConfigParser()
    parser.read(path)
    program = parser["program:skupper-west"]
    command = shlex.split(program["command"])
    assert command[-3:] == ["run", "-n", "west"]
    assert Path(command[0]).name in ("skupper-node", Path(sys.executable).name)
    ns = site.namespace("west")
    assert program["autorestart"] == "true"
    assert program["stdout_logfile"] == str(ns.runtime_dir / "logs" / "node.log")
    assert program["directory"] == str(ns.root)
    assert f'SKUPPER_ACTORS_HOME="{home}"' in program["environment"]
    assert (ns.runtime_dir / "logs").is_dir()


def test_a_folder_supervisord_does_not_include_fails_naming_the_include_line(
    site: Cli, home: Path
) -> None:
    elsewhere = home / "elsewhere"
    result = site("-n", "west", "system", "install", "--supervisor-conf-dir", str(elsewhere))
    result.check(ExitCode.SYSTEM)
    assert result.err.count("\n") == 1
    assert f'add "files = {elsewhere}/*.conf" to its [include] section' in result.err
    assert str(home / ".config" / "supervisor" / "conf.d") in result.err
    assert not elsewhere.exists()
    assert not (site.namespace("west").state_dir / "system-install.json").exists()


def test_an_included_folder_given_with_the_flag_is_used(site: Cli, home: Path) -> None:
    conf_dir = home / ".config" / "supervisor" / "conf.d"
    site("-n", "west", "system", "install", "--supervisor-conf-dir", str(conf_dir)).check()
    assert (conf_dir / "skupper-west.conf").is_file()


def test_a_configuration_without_include_says_which_line_to_add(cli: Cli, home: Path) -> None:
    cli("-n", "west", "site", "create", "west", "--wait", "none").check()
    config = user_config(home, files=None)
    result = cli("-n", "west", "system", "install")
    result.check(ExitCode.SYSTEM)
    assert result.err.count("\n") == 1
    assert f"{config} includes no folder" in result.err
    assert '"files = ~/.config/supervisor/conf.d/*.conf"' in result.err


def test_the_flag_names_the_configuration_and_relative_includes_follow_it(
    cli: Cli, home: Path
) -> None:
    cli("-n", "west", "site", "create", "west", "--wait", "none").check()
    config = home / "sv" / "supervisord.conf"
    config.parent.mkdir()
    config.write_text("[include]\nfiles = programs/*.conf other/*.ini\n")
    result = cli("-n", "west", "system", "install", "--supervisorctl-config", str(config))
    result.check()
    assert (home / "sv" / "programs" / "skupper-west.conf").is_file()
    assert "(--supervisorctl-config)" in result.out
    missing = cli("-n", "east", "system", "install", "--supervisorctl-config",
                  str(home / "none.conf"))
    missing.check(ExitCode.NOT_FOUND)
    assert missing.err == f"skupper: error: supervisord configuration {home}/none.conf " \
        "does not exist\n"


def test_systemd_unit(site: Cli, home: Path) -> None:
    result = site("-n", "west", "system", "install", "--systemd")
    result.check()
    unit = home / ".config" / "systemd" / "user" / "skupper-west.service"
    assert str(unit) in result.out
    assert "systemctl --user" in result.err
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read(unit)
    service = parser["Service"]
    assert service["ExecStart"].endswith("run -n west")
    assert service["Restart"] == "always"
    assert service["Environment"] == f'"SKUPPER_ACTORS_HOME={home}"'
    assert parser["Install"]["WantedBy"] == "default.target"


def test_install_twice_and_uninstall(site: Cli, home: Path) -> None:
    conf_dir = home / ".config" / "supervisor" / "conf.d"
    site("-n", "west", "system", "install").check()
    same = site("-n", "west", "system", "install")
    same.check()
    assert "is already installed for supervisord" in same.out
    again = site("-n", "west", "system", "install", "--systemd")
    again.check(ExitCode.ALREADY_EXISTS)
    assert "already installed (supervisord" in again.err
    # no supervisord runs: the file still goes, with a note in plain words
    result = site("-n", "west", "system", "uninstall")
    result.check()
    assert not (conf_dir / "skupper-west.conf").exists()
    assert "note: supervisord did not confirm the removal: supervisord is not running" \
        in result.err
    assert "<class" not in result.err and "Traceback" not in result.err
    site("-n", "west", "system", "uninstall").check(ExitCode.NOT_FOUND)
    site("-n", "west", "system", "install", "--systemd").check()


def test_start_under_supervisord_that_is_not_running_is_a_system_error(
    site: Cli, home: Path
) -> None:
    site("-n", "west", "system", "install").check()
    result = site("-n", "west", "system", "start", "--timeout", "5")
    result.check(ExitCode.SYSTEM)
    config = home / ".config" / "supervisor" / "supervisord.conf"
    assert result.err == (
        "skupper: error: supervisorctl reread: supervisord is not running: its socket does "
        f"not exist (supervisorctl -c {config})\n"
    )
