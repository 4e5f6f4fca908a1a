"""`bigtop web [--endpoint E ...] [--host H] [--port P] [--token T]`: the web dashboard."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from typing import Any

from bigtop.cli.ctl import control_endpoint, curve_keys


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "web",
        help="serve the web dashboard for one or more daemons",
        description=(
            "Serve the web dashboard: every watcher of every daemon with live CPU and memory "
            "graphs, a page per watcher with its processes, restart history, live log tail "
            "and actions, the event feed, the sockets and reloadconfig. It prints the URL to "
            "open, with the login token. Several --endpoint show several daemons; "
            "NAME=ENDPOINT gives a daemon a short name."
        ),
    )
    parser.add_argument(
        "--endpoint",
        action="append",
        dest="endpoints",
        metavar="[NAME=]ENDPOINT",
        help="a daemon's control endpoint; repeat for several (default: as other commands)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080; 0: any)")
    parser.add_argument(
        "--token",
        help="the login token (default: $BIGTOP_WEB_TOKEN, else a random one); required to "
        "listen on an address other hosts can reach",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="another Origin allowed to use the dashboard (e.g. https://ops.example.com "
        "behind a reverse proxy)",
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between updates (default 1)"
    )
    parser.add_argument("--timeout", type=float, default=argparse.SUPPRESS)
    parser.add_argument("-c", "--config", default=argparse.SUPPRESS)
    parser.add_argument("--curve-client-key", default=argparse.SUPPRESS)
    parser.add_argument("--curve-server-key", default=argparse.SUPPRESS)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bigtop.web import app as webapp

    token = args.token or webapp.environment_token()
    refused = webapp.exposure_error(args.host, bool(token), "--token or $BIGTOP_WEB_TOKEN")
    if refused:
        print(f"error: --host {refused}", file=sys.stderr)
        return 1
    if args.interval <= 0:
        print("error: --interval must be a positive number of seconds", file=sys.stderr)
        return 1
    try:
        curve = curve_keys(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    links = make_links(args, curve)
    try:
        import asyncio  # here, not at start-up: every other command would pay for it

        return asyncio.run(_serve(args, links, token))
    except KeyboardInterrupt:
        return 0


def make_links(args: argparse.Namespace, curve: Any) -> list[Any]:
    from bigtop.web.model import split_label
    from bigtop.web.source import DaemonLink

    arguments = args.endpoints or [control_endpoint(args)]
    links = []
    for index, argument in enumerate(arguments):
        label, endpoint = split_label(argument)
        links.append(DaemonLink(f"d{index}", endpoint, label, timeout=args.timeout, curve=curve))
    return links


async def _serve(args: argparse.Namespace, links: list[Any], token: str | None) -> int:
    from bigtop.web import app as webapp
    from bigtop.web.auth import new_token

    token = token or new_token()
    app = webapp.create_app(links, token, args.interval, args.allow_origin)
    try:
        served = await webapp.serve(app, args.host, args.port, token)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        for link in links:
            await link.close()
        return 1
    if not webapp.is_loopback(args.host):
        print(
            "warning: the dashboard speaks plain HTTP; reach it through TLS (a reverse proxy) "
            "or an SSH tunnel",
            file=sys.stderr,
        )
    for link in links:
        print(f"daemon {link.ident}: {link.label}", file=sys.stderr)
    print(f"bigtop dashboard on {served.login_url}", flush=True)
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signum)
        await served.close()
    return 0
