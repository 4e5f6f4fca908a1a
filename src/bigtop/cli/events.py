"""`bigtop events [TOPIC ...]`: follow the daemon's event stream (circusctl listen)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from bigtop.cli.ctl import add_global_options, config_endpoints, curve_keys


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "events",
        help="follow the live event stream (spawn, reap, kill, start, stop ...)",
        description=(
            "Print the daemon's events as they happen, one line each: time, topic and "
            "payload. TOPIC is a prefix such as 'watcher.web.' (default: everything). "
            "--endpoint names the events (pub/sub) endpoint here."
        ),
    )
    parser.add_argument("topics", nargs="*", metavar="TOPIC", help="topic prefixes to follow")
    parser.add_argument(
        "--count", type=int, default=0, help="exit after this many events (default: never)"
    )
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handle)


def pubsub_endpoint(args: argparse.Namespace) -> str:
    from bigtop.control.endpoints import default_endpoints

    if args.endpoint:
        return str(args.endpoint)
    if os.environ.get("BIGTOP_PUBSUB_ENDPOINT"):
        return os.environ["BIGTOP_PUBSUB_ENDPOINT"]
    if args.config:
        endpoint = config_endpoints(args.config).get("pubsub_endpoint")
        if endpoint:
            return endpoint
    return default_endpoints().pubsub


def format_event(topic: str, message: dict[str, Any]) -> str:
    when = message.get("time")
    stamp = time.strftime("%H:%M:%S", time.localtime(when)) if isinstance(when, float) else "-"
    rest = " ".join(f"{k}={v}" for k, v in message.items() if k != "time")
    return f"{stamp} {topic} {rest}".rstrip()


def handle(args: argparse.Namespace) -> int:
    import zmq

    endpoint = pubsub_endpoint(args)
    try:
        curve = curve_keys(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        from bigtop.control.curve import secure_client_socket

        secure_client_socket(sub, curve)
    sub.connect(endpoint)
    for topic in args.topics or [""]:
        sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
    seen = 0
    try:
        while True:
            frames = sub.recv_multipart()
            if len(frames) != 2:
                continue
            topic = frames[0].decode(errors="replace")
            try:
                message = json.loads(frames[1])
            except ValueError:
                message = {"raw": frames[1].decode(errors="replace")}
            if args.json:
                print(json.dumps({"topic": topic, **message}), flush=True)
            else:
                print(format_event(topic, message), flush=True)
            seen += 1
            if args.count and seen >= args.count:
                return 0
    except KeyboardInterrupt:
        return 0
    finally:
        sub.close(linger=0)
