"""`skupper-node`: run one site's router (and, for development, make a mesh's certificates).

The module imports little at its top: ``run`` may re-execute the process first (see
``skupper_actors.memtuning``), and the half second of imports would be paid twice.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from skupper_actors import __version__
from skupper_actors.logconfig import LEVELS

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
#: another node already runs this site (it holds `<runtime_dir>/node.lock`)
EXIT_ALREADY_RUNNING = 3


def run(args: argparse.Namespace) -> int:
    import structlog

    from skupper_actors.logconfig import configure_logging
    from skupper_actors.node import build_node
    from skupper_actors.security import CredentialsError
    from skupper_actors.siteconfig import SiteConfigError, load_site_config

    if args.namespace is not None:
        return run_namespace(args)
    if args.config is None:
        print("skupper-node: run needs -n NAMESPACE or -c CONFIG", file=sys.stderr)
        return EXIT_CONFIG
    try:
        config = load_site_config(args.config)
    except SiteConfigError as error:
        print(f"skupper-node: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(args.log_level, json=args.log_json, site=config.site)
    log = structlog.get_logger().bind(site=config.site)
    if not _lock_site(config.runtime_dir, f"site {config.site}", log):
        return EXIT_ALREADY_RUNNING
    try:
        node = build_node(config)
    except (CredentialsError, ValueError, OSError) as error:  # ValueError: a limit out of range
        log.error("node_config_invalid", error=str(error))
        print(f"skupper-node: {args.config}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return serve(node, log, runtime_dir=str(config.runtime_dir))


def run_namespace(args: argparse.Namespace) -> int:
    import structlog

    from skupper_actors.api import Namespace, check_namespace_name
    from skupper_actors.logconfig import configure_logging
    from skupper_actors.nsnode import SiteNotDeclared, build_namespace_node
    from skupper_actors.security import CredentialsError

    try:
        check_namespace_name(args.namespace)
    except ValueError as error:
        print(f"skupper-node: {error}", file=sys.stderr)
        return EXIT_CONFIG
    ns = Namespace.locate(args.namespace)
    configure_logging(args.log_level, json=args.log_json, site=ns.name)
    log = structlog.get_logger().bind(namespace=ns.name)
    if not _lock_site(ns.runtime_dir, f"namespace {ns.name}", log):
        return EXIT_ALREADY_RUNNING
    try:
        node = build_namespace_node(ns)
    except (SiteNotDeclared, CredentialsError, OSError) as error:
        print(f"skupper-node: namespace {ns.name}: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(args.log_level, json=args.log_json, site=node.site_name)
    log = structlog.get_logger().bind(site=node.site_name, namespace=ns.name)
    return serve(node, log, runtime_dir=str(ns.runtime_dir))


def _lock_site(runtime_dir: Any, what: str, log: Any) -> bool:
    """Hold the site's lock for the life of the process; False (and a message) if taken."""
    from skupper_actors.nodelock import SiteLocked, acquire

    try:
        acquire(runtime_dir)
    except SiteLocked as locked:
        log.error("node_already_running", pid=locked.pid, lock=str(locked.path))
        print(f"skupper-node: {what}: {locked}", file=sys.stderr)
        return False
    except OSError as error:
        log.error("node_lock_failed", error=str(error))
        print(f"skupper-node: {what}: cannot lock {runtime_dir}: {error}", file=sys.stderr)
        return False
    return True


def serve(node: Any, log: Any, runtime_dir: str) -> int:
    import signal

    import gevent

    from skupper_actors.kernel import StartFailed

    try:
        root = node.start()
    except StartFailed as error:
        log.error("node_start_failed", error=str(error))
        print(f"skupper-node: could not start the site: {error.reason}", file=sys.stderr)
        return EXIT_FAILED
    from skupper_actors.memtuning import MARK

    if MARK in os.environ:
        log.info("memcpy_tuned", glibc_tunables=os.environ.get("GLIBC_TUNABLES", ""))
    _freeze_startup_objects()
    info = node.router_info()
    log.info(
        "node_ready",
        router=info.id,
        instance=info.instance,
        inter_router=f"{info.inter_router_host}:{info.inter_router_port}",
        tls=info.tls,
        runtime_dir=runtime_dir,
    )

    def shutdown(signum: int) -> None:
        log.info("node_stopping", signal=signal.Signals(signum).name)
        gevent.spawn(root.stop, None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, shutdown, signum)
    reason = root.wait()
    log.info("node_stopped", reason=str(reason))
    return EXIT_OK if reason is not None and str(reason) in ("shutdown", "normal") else EXIT_FAILED


def _freeze_startup_objects() -> None:
    """Leave what start-up made (modules, classes, the supervisor tree, TLS contexts)
    out of every later garbage collection: a full collection walks every tracked
    object, and on the loop that forwards bytes its pause is a stall.

    The collection thresholds stay Python's (700, 10, 10): at 10,000 a connection's
    cyclic garbage (its buffers with it) waited longer, and the 10-minute chaos soak's
    nodes with TCP connections grew by 50-90 MiB instead of at most 12."""
    import gc

    gc.collect()
    gc.freeze()


def dev_certs(args: argparse.Namespace) -> int:
    from skupper_actors.security import generate_dev_mesh, issue_dev_clients

    clients = args.client or []
    if not args.sites and not clients:
        print("skupper-node dev-certs: name at least one site or --client", file=sys.stderr)
        return EXIT_CONFIG
    overlap = set(args.sites) & set(clients)
    if overlap:
        named = sorted(overlap)
        print(f"skupper-node dev-certs: {named} named as site and client", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if args.sites:
            mesh = generate_dev_mesh(
                args.out, args.sites, sans=args.san or ("localhost", "127.0.0.1")
            )
            for site in args.sites:
                print(f"{site}: {mesh.site_folder(site)}")
        for name, folder in issue_dev_clients(args.out, clients).items():
            print(f"client {name}: {folder}")
    except (OSError, ValueError) as error:
        print(f"skupper-node dev-certs: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["run"]:
        from skupper_actors.memtuning import reexec_with_fast_copies

        reexec_with_fast_copies()  # returns only when there is nothing to tune
    parser = argparse.ArgumentParser(prog="skupper-node", description=__doc__)
    parser.add_argument("--version", action="version", version=f"skupper-node {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run a site's router until SIGTERM/SIGINT")
    source = run_p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--namespace",
        "-n",
        help="run the site declared in this namespace folder (Skupper v2 resources)",
    )
    source.add_argument("--config", "-c", help="run from a single site configuration file (YAML)")
    run_p.add_argument("--log-level", choices=sorted(LEVELS), default="info")
    run_p.add_argument(
        "--log-json",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="JSON log lines (default: when stderr is not a terminal)",
    )
    run_p.set_defaults(func=run)
    certs_p = sub.add_parser(
        "dev-certs",
        help="make a CA and one credential set per site, and client certificates "
        "(development and tests)",
    )
    certs_p.add_argument("--out", required=True, help="folder for the CA and the sites' folders")
    certs_p.add_argument("--san", action="append", help="subject alternative name (repeatable)")
    certs_p.add_argument(
        "--client",
        action="append",
        metavar="NAME",
        help="also issue a client certificate (CN NAME, for SASL EXTERNAL) into OUT/NAME, "
        "from the CA made now or, with no site named, the one already in OUT/_ca (repeatable)",
    )
    certs_p.add_argument("sites", nargs="*", help="a new CA and these sites' certificates")
    certs_p.set_defaults(func=dev_certs)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
