"""`skupper`: the command group, `version`, and the error handling around every command.

Run as the `skupper` console script or `python -m skupper_actors.cli.main`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import click

import skupper_actors
from skupper_actors.api import DEFAULT_NAMESPACE
from skupper_actors.cli.common import output_option, pass_cli
from skupper_actors.cli.context import CliContext, CliEnv
from skupper_actors.cli.debug import debug
from skupper_actors.cli.errors import CliError, ExitCode, exit_codes_epilog
from skupper_actors.cli.link import link
from skupper_actors.cli.network import network
from skupper_actors.cli.output import OutputFormat, emit_data, emit_table
from skupper_actors.cli.services import connector, listener
from skupper_actors.cli.site import site
from skupper_actors.cli.system import system
from skupper_actors.cli.token import token
from skupper_actors.cli.waiting import management
from skupper_actors.management import ManagementError

#: Set to show the traceback of an unexpected error.
DEBUG_ENV = "SKUPPER_DEBUG"

HELP = """Manage a bare-metal site of a skupper-actors network, the Skupper v2 way.

Each namespace (-n) is one site: its resources live in
$SKUPPER_ACTORS_HOME/namespaces/<namespace>/ (default ~/.local/share/skupper/namespaces/,
/var/lib/skupper/namespaces/ as root), and its node ('skupper-node run -n <namespace>',
started with 'skupper system start') applies them.
"""


@click.group(
    help=HELP,
    epilog=exit_codes_epilog(),
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-n", "--namespace", default=DEFAULT_NAMESPACE, show_default=True,
    help="The namespace (one site per namespace).",
)
@click.pass_context
def cli(click_ctx: click.Context, namespace: str) -> None:
    env = click_ctx.obj if isinstance(click_ctx.obj, CliEnv) else CliEnv.from_process()
    click_ctx.obj = CliContext(env=env, namespace_name=namespace)


@cli.command(
    help="Show the versions of this CLI and of the namespace's running node.",
    short_help="Show versions.",
)
@output_option()
@pass_cli
def version(ctx: CliContext, output: OutputFormat | None) -> None:
    node: str | None
    try:
        node = management(ctx.namespace, 2.0).status().router.version
    except ManagementError:
        node = None
    if output is not None:
        emit_data(ctx, {"client": skupper_actors.__version__, "node": node}, output)
        return
    emit_table(
        ctx,
        ["COMPONENT", "VERSION"],
        [["skupper (client)", skupper_actors.__version__],
         ["skupper-node", node or "not running"]],
    )


for group in (site, listener, connector, link, token, system, network, debug):
    cli.add_command(group)


def main(argv: Sequence[str] | None = None, env: CliEnv | None = None) -> int:
    """Run one command; every failure is one line on stderr and an `ExitCode`."""
    env = env or CliEnv.from_process()
    args = list(sys.argv[1:] if argv is None else argv)
    streams = contextlib.ExitStack()
    if env.stdout is not sys.stdout:
        streams.enter_context(contextlib.redirect_stdout(env.stdout))
    if env.stderr is not sys.stderr:
        streams.enter_context(contextlib.redirect_stderr(env.stderr))
    with streams:
        try:
            cli.main(args=args, prog_name="skupper", obj=env, standalone_mode=False)
        except CliError as error:
            env.stderr.write(f"skupper: error: {error.message}\n")
            return int(error.code)
        except click.exceptions.Abort:
            env.stderr.write("skupper: interrupted\n")
            return int(ExitCode.INTERRUPTED)
        except click.exceptions.NoArgsIsHelpError as error:
            # A group given without a command: its help, as click would print it.
            env.stdout.write(error.ctx.get_help() + "\n" if error.ctx else "")
            return int(ExitCode.USAGE)
        except click.ClickException as error:
            error.show(file=env.stderr)
            return int(ExitCode.USAGE if error.exit_code == 2 else error.exit_code)
        except KeyboardInterrupt:
            env.stderr.write("skupper: interrupted\n")
            return int(ExitCode.INTERRUPTED)
        except Exception as error:
            if env.environ.get(DEBUG_ENV):
                raise
            env.stderr.write(
                f"skupper: internal error: {type(error).__name__}: {error} "
                f"(set {DEBUG_ENV}=1 for the traceback)\n"
            )
            return int(ExitCode.FAILED)
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
