"""`skupper-observer`: the network observer process (docs/observer.md).

    skupper-observer -n west

serves the REST API and /metrics on 127.0.0.1:8080. Binding another address needs
``--username`` and ``--password-file``. ``--router-url amqp://HOST:PORT`` attaches over
AMQP to a site's AMQP endpoint instead, and sees every site of the network;
``amqps://`` with ``--router-tls DIR`` (``ca.crt``, and ``tls.crt`` + ``tls.key`` for an
endpoint with ``auth: external``) over TLS.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

EXIT_OK = 0
EXIT_USAGE = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from skupper_actors import __version__

    parser = argparse.ArgumentParser(
        prog="skupper-observer",
        description="The network observer: flow records in, REST API and Prometheus metrics out.",
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:8080", help="HOST:PORT (default %(default)s)"
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="read the flow records of this namespace's node on this host (repeatable)",
    )
    parser.add_argument(
        "--management",
        action="append",
        default=[],
        metavar="RUNTIME_DIR",
        help="read the flow records of the node whose runtime folder this is (repeatable)",
    )
    parser.add_argument(
        "--router-url",
        help="attach over AMQP to a site's AMQP endpoint (every site's records come to it), "
        "e.g. amqp://127.0.0.1:5672, or amqps://... with --router-tls",
    )
    parser.add_argument(
        "--router-tls",
        type=Path,
        metavar="DIR",
        help="for amqps://: a folder with ca.crt (the CA that signed the site's "
        "certificate) and, for an endpoint with auth: external, tls.crt and tls.key (a "
        "client certificate from that CA, e.g. skupper-node dev-certs --client)",
    )
    parser.add_argument(
        "--flow-record-ttl", default="15m", help="how long ended connections are kept (15m)"
    )
    parser.add_argument(
        "--max-ended-connections",
        type=int,
        default=100_000,
        help="at most this many ended connections are kept (about 2 KiB each; %(default)s)",
    )
    parser.add_argument("--username", help="HTTP basic credentials' user")
    parser.add_argument("--password-file", type=Path, help="a file holding the password")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def router_url_problem(url: str) -> str | None:
    """Why ``url`` is not an AMQP endpoint's URL the observer can attach to (None: it is)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return str(error)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname or port is None:
        return "expected amqp://HOST:PORT or amqps://HOST:PORT"
    return None


def router_tls_problem(url: str, folder: Path | None) -> str | None:
    """Why ``--router-tls`` does not go with ``url`` (None: it does)."""
    tls = url.startswith("amqps:")
    if folder is None:
        return "amqps:// needs --router-tls DIR (its ca.crt at least)" if tls else None
    if not tls:
        return "--router-tls goes with an amqps:// --router-url"
    from skupper_actors.observer.attach import client_tls

    try:
        client_tls(folder)
    except (OSError, ValueError) as error:
        return f"--router-tls {folder}: {error}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from skupper_actors.api.timetext import parse_duration

    from .api import Credentials
    from .server import InsecureBindError, check_bind

    def fail(message: str) -> int:
        print(f"skupper-observer: {message}", file=sys.stderr)
        return EXIT_USAGE

    if bool(args.router_url) == bool(args.namespace or args.management):
        return fail("give -n NAMESPACE or --management RUNTIME_DIR, or else --router-url")
    if args.router_url:
        problem = router_url_problem(args.router_url)
        if problem:
            return fail(f"--router-url {args.router_url!r}: {problem}")
    problem = router_tls_problem(args.router_url or "", args.router_tls)
    if problem:
        return fail(problem)
    try:
        from skupper_actors.api.namespace import Namespace

        for name in args.namespace:
            args.management.append(str(Namespace.locate(name).runtime_dir))
    except ValueError as error:
        return fail(str(error))
    host, _, port_text = args.listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        return fail(f"--listen {args.listen!r} is not HOST:PORT")
    try:
        ttl = parse_duration(args.flow_record_ttl)
    except ValueError as error:
        return fail(f"--flow-record-ttl: {error}")
    if args.max_ended_connections < 0:
        return fail("--max-ended-connections must not be negative")
    credentials = None
    if args.username or args.password_file:
        if not (args.username and args.password_file):
            return fail("--username and --password-file go together")
        try:
            password = args.password_file.read_text().strip()
        except OSError as error:
            return fail(f"--password-file: {error.strerror}: {args.password_file}")
        if not password:
            return fail(f"--password-file {args.password_file} is empty")
        credentials = Credentials(args.username, password)
    try:
        check_bind(host.strip("[]"), credentials)
    except InsecureBindError as error:
        return fail(str(error))
    return serve(args, host.strip("[]"), int(port_text), ttl, credentials)


def serve(args: argparse.Namespace, host: str, port: int, ttl: float, credentials: object) -> int:
    import gevent
    import gevent.event
    import structlog

    from skupper_actors.logconfig import configure_logging
    from skupper_actors.protocol.vanflow import VanflowDecodeError, from_message

    from .api import Credentials, ObserverApp
    from .attach import Delivered, ManagementFeed, SiteAttachment
    from .collector import Collector, source_of_address
    from .discovery import announce, withdraw
    from .server import make_server

    configure_logging(args.log_level)
    log = structlog.get_logger().bind(component="observer")
    collector = Collector(now=time.time(), flow_ttl=ttl, max_ended_flows=args.max_ended_connections)
    assert credentials is None or isinstance(credentials, Credentials)
    app = ObserverApp(collector, clock=time.time, credentials=credentials)
    server = make_server(app, host, port)
    try:
        server.start()
    except OSError as error:
        print(
            f"skupper-observer: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr
        )
        return EXIT_USAGE
    log.info("observer_listening", host=host, port=server.server_port)
    # the `skupper` command finds us through the sites' runtime folders (discovery.py)
    shown_host = f"[{host}]" if ":" in host else host
    announced = announce(args.management, f"http://{shown_host}:{server.server_port}")
    attachment: SiteAttachment | None = None

    def delivered(batch: list[Delivered]) -> None:
        now = time.time()
        effects = []
        for address, subject, properties, body in batch:
            try:
                message = from_message(subject, properties, body, collector.stats.problems)
            except VanflowDecodeError:
                collector.stats.decode_errors += 1
                continue
            effects += collector.receive(message, now=now, source=source_of_address(address))
        if attachment is not None:
            attachment.apply(effects)

    def read(batch: list[bytes]) -> None:
        now = time.time()
        for data in batch:
            collector.receive_bytes(data, now=now)

    feed = ManagementFeed(args.management, read) if args.management else None
    if args.router_url:
        attachment = SiteAttachment(args.router_url, delivered, tls=args.router_tls)
        attachment.start()
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    code = EXIT_OK
    while not stop.wait(1.0):
        if attachment is not None and attachment.failure is not None:
            failure = attachment.failure
            log.error("observer_attachment_failed", url=args.router_url, error=failure)
            print(f"skupper-observer: the AMQP client failed: {failure}", file=sys.stderr)
            code = 1
            break
        if feed is not None:
            feed.poll()
        effects = collector.tick(time.time())
        if attachment is not None:
            attachment.apply(effects)
    log.info("observer_stopping")
    withdraw(announced)
    if attachment is not None:
        attachment.stop()
    server.stop(timeout=2)
    return code


if __name__ == "__main__":
    sys.exit(main())
