"""`python -m bigtop.plugins.runner`: run one plugin in this process.

    python -m bigtop.plugins.runner --endpoint E --pubsub P [--name NAME]
        [--config k:v:::k:v] [--check-delay 5] [--log-level info] [--parent-pid PID] USE

USE is what a `[plugin:NAME]` section's `use` says (see registry.py). A subclass of
`bigtop.plugins.Plugin` runs on asyncio; any other class is taken to follow Circus's plugin
contract (`Cls(endpoint, pubsub, check_delay, ssh_server, **config)`, then `start()`, and
`stop()` at the end), which covers classes built on `circus.plugins.CircusPlugin` (when
circus is importable here) and on `bigtop.plugins.circus_compat.CircusPlugin`.

Options come from `--config` (Circus's `k:v:::k:v`) and from `$BIGTOP_PLUGIN_OPTIONS`, a
JSON object: that is how the daemon passes them, so values with spaces or colons survive and
`ps` does not show them. The daemon also passes `--parent-pid`: the plugin gets SIGTERM when
the daemon dies, even by SIGKILL.

Exit status: 0 stopped by SIGTERM/SIGINT; 1 the plugin failed (the daemon restarts it with
backoff); 78 (EX_CONFIG) it cannot run with this configuration (the daemon does not retry).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import logging
import os
import signal
import sys
from types import FrameType
from typing import Any

from bigtop.plugins import registry
from bigtop.plugins.base import Plugin, PluginContext
from bigtop.plugins.options import PluginConfigError, parse_circus_config

EXIT_FAILED = 1
EXIT_CONFIG = 78
OPTIONS_VARIABLE = "BIGTOP_PLUGIN_OPTIONS"
PR_SET_PDEATHSIG = 1
log = logging.getLogger("bigtop.plugin")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bigtop.plugins.runner", description="Run one bigtop or Circus plugin."
    )
    parser.add_argument("use", help="plugin name, entry point, or dotted path to its class")
    parser.add_argument("--endpoint", required=True, help="the daemon's control endpoint")
    parser.add_argument("--pubsub", required=True, help="the daemon's events endpoint")
    parser.add_argument("--name", help="the [plugin:NAME] section (default: USE)")
    parser.add_argument("--config", help="options as Circus passes them: k:v:::k:v")
    parser.add_argument("--check-delay", type=float, default=5.0)
    parser.add_argument("--ssh", default=None, help="accepted for Circus; not supported")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--parent-pid", type=int, help="exit when this process dies")
    return parser.parse_args(argv)


def read_options(args: argparse.Namespace, environ: dict[str, str]) -> dict[str, str]:
    options = parse_circus_config(args.config)
    text = environ.get(OPTIONS_VARIABLE)
    if text:
        extra = json.loads(text)
        if not isinstance(extra, dict):
            raise PluginConfigError(f"${OPTIONS_VARIABLE} must hold a JSON object")
        options.update({str(k): str(v) for k, v in extra.items()})
    return options


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the daemon goes (Linux); leave now if it already went."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        raise SystemExit(0)


def run_plugin(cls: type[Plugin], context: PluginContext) -> int:
    try:
        plugin = cls(context)
    except PluginConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    except Exception:
        log.exception("plugin %s could not be created", context.name)
        return EXIT_FAILED

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, plugin.stop)
        await plugin.run()

    try:
        asyncio.run(serve())
    except PluginConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    except Exception:
        log.exception("plugin %s failed", context.name)
        return EXIT_FAILED
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # what Circus's runner handles (Ctrl-C): stop() runs


def run_circus_plugin(cls: Any, args: argparse.Namespace, options: dict[str, str]) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        plugin = cls(args.endpoint, args.pubsub, args.check_delay, args.ssh, **options)
    except Exception as exc:
        log.error("[plugin:%s] cannot create %s: %s", args.name, args.use, exc)
        return EXIT_CONFIG
    status = 0
    try:
        plugin.start()
    except KeyboardInterrupt:
        pass
    except Exception:
        log.exception("plugin %s failed", args.name)
        status = EXIT_FAILED
    finally:
        try:
            plugin.stop()
        except KeyboardInterrupt:
            pass  # a second SIGTERM while stopping
        except Exception:
            log.exception("plugin %s failed while stopping", args.name)
    return status


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.name = args.name or args.use
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(levelname)s %(message)s",
    )
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    section = f"plugin:{args.name}"
    try:
        options = read_options(args, dict(os.environ))
        cls = registry.load(args.use, section)
    except (PluginConfigError, ValueError) as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    if isinstance(cls, type) and issubclass(cls, Plugin):
        from bigtop.control.curve import CurveKeyError, client_keys_from_env

        try:
            curve = client_keys_from_env()
        except CurveKeyError as exc:
            log.error("[%s] %s", section, exc)
            return EXIT_CONFIG
        context = PluginContext(
            name=args.name,
            endpoint=args.endpoint,
            pubsub_endpoint=args.pubsub,
            options=options,
            check_delay=args.check_delay,
            curve=curve,
        )
        return run_plugin(cls, context)
    status = EXIT_FAILED
    try:
        status = run_circus_plugin(cls, args, options)
    finally:
        logging.shutdown()
        os._exit(status)  # a Circus plugin may leave sockets or threads that block an exit


if __name__ == "__main__":
    sys.exit(main())
