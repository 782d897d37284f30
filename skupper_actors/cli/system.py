"""`skupper system`: run the namespace's node (under supervisord, systemd, or as a
background process) and apply resource files."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import click

from skupper_actors import nodelock
from skupper_actors.cli import deploy, process, secrets, store, supervisorconf
from skupper_actors.cli.common import DURATION, output_option, pass_cli
from skupper_actors.cli.context import CliContext
from skupper_actors.cli.deploy import Installation
from skupper_actors.cli.errors import CliError, ExitCode
from skupper_actors.cli.output import OutputFormat, emit_data, emit_table
from skupper_actors.cli.waiting import node_status, request_reload
from skupper_actors.security._files import ensure_private_dir

_SUPERVISORCTL_CONFIG = click.option(
    "--supervisorctl-config",
    help="supervisord's configuration file for supervisorctl (default: the one recorded by "
    "install, else supervisorctl's own search).",
)
_TIMEOUT = click.option(
    "--timeout", type=DURATION, default=30.0, show_default="30s",
    help="How long to wait for the node.",
)


@click.group(name="system", help="Run the namespace's node and apply resource files.")
def system() -> None:
    pass


@system.command(
    help="Install the node under supervisord (a [program:skupper-<namespace>] file in a "
    "folder that supervisord's [include] reads) or, with --systemd, as a systemd user unit. "
    "supervisord's configuration is --supervisorctl-config, else "
    f"{supervisorconf.USER_CONFIG}, else the one a running supervisord of yours uses, else "
    "(as root) /etc/supervisor/supervisord.conf."
)
@click.option(
    "--supervisor-conf-dir",
    help="The folder for the program file; supervisord's [include] must read it "
    "(default: the folder its [include] names).",
)
@click.option("--systemd", is_flag=True, help="Write a systemd user unit instead.")
@click.option(
    "--systemd-unit-dir", default=deploy.DEFAULT_SYSTEMD_UNIT_DIR, show_default=True,
    help="Where the systemd user unit goes.",
)
@_SUPERVISORCTL_CONFIG
@pass_cli
def install(
    ctx: CliContext,
    supervisor_conf_dir: str | None,
    systemd: bool,
    systemd_unit_dir: str,
    supervisorctl_config: str | None,
) -> None:
    namespace = ctx.namespace
    environ = ctx.env.environ
    name = deploy.program_name(namespace)
    config: supervisorconf.SupervisordConfig | None = None
    if systemd:
        path = deploy.expand(systemd_unit_dir, environ) / f"{name}.service"
    else:
        config = supervisorconf.find_config(supervisorctl_config, environ)
        folder = deploy.expand(supervisor_conf_dir, environ) if supervisor_conf_dir else None
        path = supervisorconf.check_reads(config, folder, name)
    manager = "systemd" if systemd else "supervisord"
    existing = deploy.read_installation(namespace)
    if existing is not None and (existing.manager != manager or existing.path != str(path)):
        raise CliError(
            ExitCode.ALREADY_EXISTS,
            f"namespace {namespace.name!r} is already installed ({existing.manager}: "
            f"{existing.path}); run 'skupper -n {namespace.name} system uninstall' first",
        )
    namespace.ensure_layout()
    ensure_private_dir(deploy.log_dir(namespace))
    command = deploy.node_command(namespace)
    if config is None:
        deploy.write_config_file(path, deploy.systemd_unit(namespace, command, environ))
        installation = Installation(manager="systemd", path=str(path))
        hint = f"systemctl --user daemon-reload && systemctl --user enable --now {name}"
    else:
        deploy.write_config_file(path, deploy.supervisor_program(namespace, command, environ))
        installation = Installation(
            manager="supervisord", path=str(path), supervisorctl_config=str(config.path)
        )
        hint = f"skupper -n {namespace.name} system start  (supervisorctl reread + update)"
    deploy.write_installation(namespace, installation)
    if existing is not None:
        ctx.out(
            f"The node of namespace {namespace.name!r} is already installed for "
            f"{installation.manager}: {path} (rewritten, unchanged otherwise)."
        )
    else:
        ctx.out(
            f"Installed the node of namespace {namespace.name!r} for {installation.manager}: "
            f"{path}"
        )
    if config is not None:
        ctx.out(f"supervisord's configuration: {config.path} ({config.found_by}).")
    ctx.out(f"Logs go to {deploy.log_file(namespace)}.")
    if config is not None and not config.answering():
        ctx.note(
            f"note: no supervisord answers for {config.path} now; start it "
            f"(supervisord -c {config.path}, or 'service supervisor start' for the system's) "
            f"before 'system start'."
        )
    ctx.note(f"Start it with: {hint}")


@system.command(help="Remove what install wrote (stopping the node first); resources stay.")
@_SUPERVISORCTL_CONFIG
@_TIMEOUT
@pass_cli
def uninstall(ctx: CliContext, supervisorctl_config: str | None, timeout: float) -> None:
    namespace = ctx.namespace
    installation = deploy.read_installation(namespace)
    environ = ctx.env.environ
    pid = process.background_pid(namespace)
    if pid is not None:
        process.stop_background(namespace, pid, timeout)
    if installation is None:
        raise CliError(ExitCode.NOT_FOUND, f"namespace {namespace.name!r} is not installed")
    name = deploy.program_name(namespace)
    problems: list[str] = []
    if installation.manager == "supervisord":
        config = supervisorctl_config or installation.supervisorctl_config
        with contextlib.suppress(FileNotFoundError):
            Path(installation.path).unlink()
        # `update` with the program's file gone stops the program and removes it.
        for args in (["reread"], ["update", name]):
            try:
                result = process.supervisorctl(config, args, environ)
            except CliError as error:
                problems.append(error.message)
                break
            if result.returncode != 0:
                problems.append(
                    supervisorconf.explain_output(result.stdout + result.stderr, config)
                    if (result.stdout + result.stderr).strip() else f"{args[0]} failed"
                )
                break
    else:
        for args in (["disable", "--now", f"{name}.service"],):
            try:
                process.checked(process.systemctl(args, environ), "systemctl " + " ".join(args))
            except CliError as error:
                problems.append(error.message)
        with contextlib.suppress(FileNotFoundError):
            Path(installation.path).unlink()
        with contextlib.suppress(CliError):
            process.systemctl(["daemon-reload"], environ)
    deploy.record_path(namespace).unlink(missing_ok=True)
    ctx.out(f"Uninstalled: removed {installation.path}.")
    for problem in problems:
        ctx.note(f"note: {installation.manager} did not confirm the removal: {problem}")


def _start_supervised(
    ctx: CliContext, installation: Installation, config: str | None
) -> int | None:
    environ = ctx.env.environ
    name = deploy.program_name(ctx.namespace)

    def run(*args: str) -> None:
        result = process.supervisorctl(config, args, environ)
        process.checked(result, f"supervisorctl {' '.join(args)}", config)

    run("reread")
    run("update", name)  # adds the program; autostart starts it
    state, pid = process.supervisor_state(config, name, environ)
    if state not in ("RUNNING", "STARTING"):
        run("start", name)
        state, pid = process.supervisor_state(config, name, environ)
    return pid


@system.command(help="Start the node (through supervisord or systemd if installed so, else in "
                "the background with a pid file) and wait until it answers.")
@_SUPERVISORCTL_CONFIG
@_TIMEOUT
@pass_cli
def start(ctx: CliContext, supervisorctl_config: str | None, timeout: float) -> None:
    namespace = ctx.namespace
    installation = deploy.read_installation(namespace)
    environ = ctx.env.environ
    pid: int | None
    if not store.declared(namespace, "Site"):
        raise CliError(
            ExitCode.NOT_FOUND,
            f"namespace {namespace.name!r} declares no site: create one first "
            f"(skupper -n {namespace.name} site create NAME --wait none)",
        )
    background = process.background_pid(namespace)
    holder = nodelock.holder(namespace.runtime_dir)
    if installation is not None and background is not None:
        raise CliError(
            ExitCode.ALREADY_EXISTS,
            f"the node of namespace {namespace.name!r} already runs as a background process "
            f"(pid {background}); stop it first (skupper -n {namespace.name} system stop), "
            f"then start it under {installation.manager}",
        )
    if installation is not None and installation.manager == "supervisord":
        config = supervisorctl_config or installation.supervisorctl_config
        if holder is not None:
            program = deploy.program_name(namespace)
            _, supervised = process.supervisor_state(config, program, environ)
            if supervised != holder:
                raise CliError(
                    ExitCode.ALREADY_EXISTS,
                    f"another node already runs namespace {namespace.name!r} (pid "
                    f"{holder or 'unknown'}, not supervisord's); stop it first",
                )
        pid = _start_supervised(ctx, installation, config)
        how = "supervisord"
    elif installation is not None:
        name = f"{deploy.program_name(namespace)}.service"
        process.checked(process.systemctl(["daemon-reload"], environ), "systemctl daemon-reload")
        process.checked(process.systemctl(["start", name], environ), f"systemctl start {name}")
        pid, how = None, "systemd"
    else:
        if background is not None:
            ctx.out(f"The node of namespace {namespace.name!r} is already running "
                    f"(pid {background}).")
            return
        if holder is not None:
            raise CliError(
                ExitCode.ALREADY_EXISTS,
                f"another node already runs namespace {namespace.name!r} "
                f"(pid {holder or 'unknown'}, not started by 'system start'); stop it first",
            )
        pid, how = process.start_background(namespace, environ), "background process"
    with ctx.progress(f"Waiting for the node of namespace {namespace.name!r} to answer") as shown:
        status = process.wait_answering(
            namespace, timeout, pid if how == "background process" else None,
            progress=shown.update,
        )
    if how == "supervisord" and installation is not None:
        # supervisord says STARTING (no pid yet) until the program has run startsecs
        config = supervisorctl_config or installation.supervisorctl_config
        deadline = time.monotonic() + 5.0
        while True:
            state, pid = process.supervisor_state(config, deploy.program_name(namespace), environ)
            if state != "STARTING" or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        holder = nodelock.holder(namespace.runtime_dir)
        if state != "RUNNING" or (pid and holder and holder != pid):
            other = f"; the node answering is pid {holder}" if holder and holder != pid else ""
            raise CliError(
                ExitCode.FAILED,
                f"supervisord's {deploy.program_name(namespace)} is {state}{other} "
                f"(log: {deploy.log_file(namespace)})",
            )
    pid_text = f", pid {pid}" if pid else ""
    ctx.out(f"Node of namespace {namespace.name!r} running ({how}{pid_text}): router "
            f"{status.router.id}.")


@system.command(help="Stop the node (SIGTERM).")
@_SUPERVISORCTL_CONFIG
@_TIMEOUT
@pass_cli
def stop(ctx: CliContext, supervisorctl_config: str | None, timeout: float) -> None:
    namespace = ctx.namespace
    installation = deploy.read_installation(namespace)
    environ = ctx.env.environ
    name = deploy.program_name(namespace)
    if installation is not None and installation.manager == "supervisord":
        config = supervisorctl_config or installation.supervisorctl_config
        state, _ = process.supervisor_state(config, name, environ)
        if state in ("RUNNING", "STARTING", "BACKOFF"):
            process.checked(process.supervisorctl(config, ["stop", name], environ),
                            "supervisorctl stop", config)
    elif installation is not None:
        process.checked(process.systemctl(["stop", f"{name}.service"], environ), "systemctl stop")
    pid = process.background_pid(namespace)
    if pid is not None:
        with ctx.progress(f"Waiting for the node of namespace {namespace.name!r} to stop") as shown:
            graceful = process.stop_background(namespace, pid, timeout, progress=shown.update)
        if not graceful:
            ctx.note(f"note: the node did not stop within {timeout:g}s and was killed.")
    elif installation is None:
        raise CliError(
            ExitCode.NODE_UNREACHABLE, f"the node of namespace {namespace.name!r} is not running"
        )
    ctx.out(f"Node of namespace {namespace.name!r} stopped.")


def _status_data(ctx: CliContext, config: str | None) -> dict[str, Any]:
    namespace = ctx.namespace
    installation = deploy.read_installation(namespace)
    data: dict[str, Any] = {
        "namespace": namespace.name,
        "path": str(namespace.root),
        "manager": installation.manager if installation else "none",
        "installedAt": installation.path if installation else None,
        "process": None,
        "pid": None,
    }
    if installation is not None and installation.manager == "supervisord":
        try:
            state, pid = process.supervisor_state(
                config or installation.supervisorctl_config, deploy.program_name(namespace),
                ctx.env.environ,
            )
            data["process"], data["pid"] = state, pid
        except CliError as error:
            data["process"] = f"unknown ({error.message})"
    else:
        pid = process.background_pid(namespace)
        data["process"], data["pid"] = ("RUNNING", pid) if pid else ("STOPPED", None)
        if installation is not None:
            data["process"] = "see systemctl --user status"
    status = process.answering(namespace)
    data["node"] = None
    if status is not None:
        data["node"] = {
            "router": status.router.id,
            "instance": status.router.instance,
            "version": status.router.version,
            "linksUp": sum(1 for link in status.links if link.state == "up"),
            "links": len(status.links),
            "reachableRouters": len(status.routers),
        }
    sites = store.declared(namespace, "Site")
    data["site"] = sites[0].name if sites else None
    data["resources"] = len(store.declared(namespace))
    return data


@system.command(help="Show how the node runs and what it reports.")
@_SUPERVISORCTL_CONFIG
@output_option()
@pass_cli
def status(ctx: CliContext, supervisorctl_config: str | None, output: OutputFormat | None) -> None:
    data = _status_data(ctx, supervisorctl_config)
    if output is not None:
        emit_data(ctx, data, output)
    else:
        node = data["node"]
        rows = [
            ["namespace", data["namespace"]],
            ["folder", data["path"]],
            ["site", data["site"]],
            ["resources", data["resources"]],
            ["manager", data["manager"]],
            ["process", data["process"]],
            ["pid", data["pid"]],
            ["node", "not answering" if node is None else
             f"router {node['router']}, links up {node['linksUp']}/{node['links']}, "
             f"routers reachable {node['reachableRouters']}"],
        ]
        emit_table(ctx, None, rows)
    if data["node"] is None:
        raise CliError(
            ExitCode.NODE_UNREACHABLE,
            f"the node of namespace {ctx.namespace.name!r} is not running",
        )


@system.command(help="Ask the node to apply input/resources now.")
@pass_cli
def reload(ctx: CliContext) -> None:
    status = node_status(ctx.namespace, "reload")
    ctx.out(f"Node of namespace {ctx.namespace.name!r} reloaded (router {status.router.id}).")


@system.command(
    help="Write the resources of a file (or - for stdin) into the namespace; TLS Secrets "
    "(from 'skupper link generate') go to input/certs/<name>/."
)
@click.option("-f", "--filename", "file", required=True, help="A YAML or JSON file, or -.")
@pass_cli
def apply(ctx: CliContext, file: str) -> None:
    found = store.read_input_file(file, ctx.env.stdin.read() if file == "-" else None)
    stored = [secrets.credentials_of(doc, file) for doc in found.secrets]  # check all first
    for name, credentials in stored:
        secrets.store_credentials(ctx.namespace, name, credentials)
        ctx.out(f"Secret {name!r} applied.")
    for resource in found.resources:
        store.write(ctx.namespace, resource)
        ctx.out(f"{resource.kind} {resource.name!r} applied.")
    if not request_reload(ctx.namespace).running:
        ctx.note(f"note: the site in namespace {ctx.namespace.name!r} is not running.")


@system.command(help="Delete the resources named in a file (or - for stdin) from the namespace.")
@click.option("-f", "--filename", "file", required=True, help="A YAML or JSON file, or -.")
@pass_cli
def delete(ctx: CliContext, file: str) -> None:
    found = store.read_input_file(file, ctx.env.stdin.read() if file == "-" else None)
    missing = []
    for resource in found.resources:
        if store.delete(ctx.namespace, resource.kind, resource.name):
            ctx.out(f"{resource.kind} {resource.name!r} deleted.")
        else:
            missing.append(f"{resource.kind}/{resource.name}")
    for document in found.secrets:
        name = secrets.secret_name(document, file)
        if secrets.remove_credentials(ctx.namespace, name):
            ctx.out(f"Secret {name!r} deleted.")
        else:
            missing.append(f"Secret/{name}")
    request_reload(ctx.namespace)
    if missing:
        raise CliError(
            ExitCode.NOT_FOUND,
            f"not found in namespace {ctx.namespace.name!r}: {', '.join(missing)}",
        )
