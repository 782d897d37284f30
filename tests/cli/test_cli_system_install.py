"""`skupper system install|uninstall`: the files written for supervisord and systemd."""

from __future__ import annotations

import configparser
import shlex
import sys
from pathlib import Path

import pytest
from clikit import Cli

from skupper_actors.cli.errors import ExitCode

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def site(cli: Cli) -> Cli:
    cli("-n", "west", "site", "create", "west", "--wait", "none").check()
    return cli


def test_supervisord_program(site: Cli, home: Path) -> None:
    conf_dir = home / "conf.d"
    result = site("-n", "west", "system", "install", "--supervisor-conf-dir", str(conf_dir))
    result.check()
    path = conf_dir / "skupper-west.conf"
    assert str(path) in result.out
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


def test_default_folder_is_under_home(site: Cli, home: Path) -> None:
    site("-n", "west", "system", "install").check()
    assert (home / ".config" / "supervisor" / "conf.d" / "skupper-west.conf").is_file()


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
    conf_dir = home / "conf.d"
    site("-n", "west", "system", "install", "--supervisor-conf-dir", str(conf_dir)).check()
    again = site("-n", "west", "system", "install", "--systemd")
    again.check(ExitCode.ALREADY_EXISTS)
    assert "already installed (supervisord" in again.err
    # no supervisord runs: the file still goes, with a note
    result = site(
        "-n", "west", "system", "uninstall", "--supervisorctl-config", str(home / "none.conf")
    )
    result.check()
    assert not (conf_dir / "skupper-west.conf").exists()
    assert "note: supervisord did not confirm" in result.err
    site("-n", "west", "system", "uninstall").check(ExitCode.NOT_FOUND)
    site("-n", "west", "system", "install", "--systemd").check()


def test_start_under_supervisord_that_is_not_running_is_a_system_error(
    site: Cli, home: Path
) -> None:
    site("-n", "west", "system", "install", "--supervisor-conf-dir", str(home / "c"),
         "--supervisorctl-config", str(home / "missing.conf")).check()
    result = site("-n", "west", "system", "start", "--timeout", "5")
    result.check(ExitCode.SYSTEM)
    assert result.err.startswith("skupper: error: supervisorctl reread: ")
