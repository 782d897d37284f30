"""Every failing command says one plain line: no Python traceback, no `<class ...>`.

The commands run against a namespace whose node is not running, installed for a
supervisord whose configuration exists but whose daemon does not run (the case that used
to print supervisorctl's `<class 'FileNotFoundError'>`), and with bad files and values.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clikit import Cli

from skupper_actors.cli.errors import ExitCode

pytestmark = pytest.mark.timeout(120)

SUPERVISORD_CONF = """\
[unix_http_server]
file=%(here)s/supervisor.sock

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock

[include]
files = conf.d/*.conf
"""


@pytest.fixture
def installed(cli: Cli, home: Path) -> Cli:
    """Site `west`, installed for a supervisord that does not run; `empty` has no site."""
    config = home / ".config" / "supervisor" / "supervisord.conf"
    config.parent.mkdir(parents=True)
    config.write_text(SUPERVISORD_CONF)
    cli("-n", "west", "site", "create", "west", "--wait", "none").check()
    cli("-n", "west", "system", "install").check()
    (home / "bad.yaml").write_text("kind: Listener\nmetadata: {name: x}\nspec: {port: nope}\n")
    (home / "not-yaml.yaml").write_text("{{{\n")
    return cli


ERRORS: list[tuple[tuple[str | int, ...], ExitCode]] = [
    (("-n", "west", "system", "start", "--timeout", "3"), ExitCode.SYSTEM),
    (("-n", "west", "system", "stop"), ExitCode.SYSTEM),
    (("-n", "west", "system", "status"), ExitCode.NODE_UNREACHABLE),
    (("-n", "west", "system", "reload"), ExitCode.NODE_UNREACHABLE),
    (("-n", "west", "system", "install", "--supervisor-conf-dir", "/tmp"), ExitCode.SYSTEM),
    (("-n", "west", "system", "install", "--systemd"), ExitCode.ALREADY_EXISTS),
    (("-n", "east", "system", "install", "--supervisorctl-config", "/nonexistent.conf"),
     ExitCode.NOT_FOUND),
    (("-n", "empty", "system", "start"), ExitCode.NOT_FOUND),
    (("-n", "empty", "system", "stop"), ExitCode.NODE_UNREACHABLE),
    (("-n", "empty", "system", "uninstall"), ExitCode.NOT_FOUND),
    (("-n", "west", "system", "apply", "-f", "/nonexistent.yaml"), ExitCode.NOT_FOUND),
    (("-n", "west", "system", "apply", "-f", "{home}/bad.yaml"), ExitCode.VALIDATION),
    (("-n", "west", "system", "apply", "-f", "{home}/not-yaml.yaml"), ExitCode.VALIDATION),
    (("-n", "west", "system", "delete", "-f", "{home}/not-yaml.yaml"), ExitCode.VALIDATION),
    (("-n", "west", "site", "create", "again", "--wait", "none"), ExitCode.ALREADY_EXISTS),
    (("-n", "west", "site", "status", "nope"), ExitCode.NOT_FOUND),
    (("-n", "west", "listener", "create", "web", 8080), ExitCode.NODE_UNREACHABLE),
    (("-n", "west", "listener", "delete", "nope"), ExitCode.NOT_FOUND),
    (("-n", "west", "connector", "status", "nope"), ExitCode.NOT_FOUND),
    (("-n", "west", "link", "status", "nope"), ExitCode.NOT_FOUND),
    (("-n", "west", "link", "delete", "nope"), ExitCode.NOT_FOUND),
    (("-n", "west", "token", "issue", "{home}/t.token"), ExitCode.NODE_UNREACHABLE),
    (("-n", "west", "token", "redeem", "/nonexistent.token"), ExitCode.NOT_FOUND),
    (("-n", "west", "token", "redeem", "{home}/bad.yaml"), ExitCode.VALIDATION),
    (("-n", "west", "network", "status"), ExitCode.NODE_UNREACHABLE),
    (("-n", "west", "network", "status", "-o", "json"), ExitCode.NODE_UNREACHABLE),
    (("-n", "west", "debug", "dump", "/nonexistent/dir/x.tar.gz"), ExitCode.NOT_FOUND),
    (("-n", "bad/name", "site", "status"), ExitCode.USAGE),
]


def assert_plain(text: str, what: str) -> None:
    assert "Traceback" not in text, f"{what}: a traceback\n{text}"
    assert "<class" not in text, f"{what}: a Python class\n{text}"
    assert "internal error" not in text, f"{what}: an internal error\n{text}"


@pytest.mark.parametrize(("args", "code"), ERRORS, ids=lambda v: " ".join(map(str, v))
                         if isinstance(v, tuple) else str(v))
def test_an_error_is_one_plain_line(
    installed: Cli, home: Path, args: tuple[str | int, ...], code: ExitCode
) -> None:
    argv = [str(a).format(home=home) for a in args]
    result = installed(*argv)
    what = "skupper " + " ".join(argv)
    assert result.code == code, f"{what}: exit {result.code}\n{result.out}\n{result.err}"
    assert_plain(result.out + result.err, what)
    errors = [line for line in result.err.splitlines() if line.startswith("skupper: error:")]
    assert len(errors) == 1 or code == ExitCode.USAGE, f"{what}:\n{result.err}"


def test_uninstall_beside_a_supervisord_that_does_not_run_says_so_plainly(
    installed: Cli,
) -> None:
    result = installed("-n", "west", "system", "uninstall").check()
    assert_plain(result.out + result.err, "system uninstall")
    assert "supervisord is not running: its socket does not exist" in result.err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["run", "-n", "bad/name"], 2),
        (["run", "-c", "/nonexistent.yaml"], 2),
        (["run", "-n", "empty"], 2),
    ],
)
def test_the_nodes_errors_are_plain_too(
    cli: Cli, args: list[str], code: int
) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "skupper-node"), *args], env=cli.environ,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == code, result.stderr
    assert_plain(result.stdout + result.stderr, "skupper-node " + " ".join(args))
    assert result.stderr.splitlines()[-1].startswith("skupper-node: ")
