"""`bigtop run CONFIG`: start the daemon (foreground by default)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bigtop.config.model import Config
    from bigtop.runtime.arbiter import Arbiter

# The daemon's modules are imported when `run` runs, not when the CLI starts, so that
# `bigtop status` does not pay for asyncio, psutil and the whole runtime.


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="start the daemon with a config file",
        description=(
            "Start the bigtop daemon: spawn every autostart watcher, restart processes that "
            "die, stop everything gracefully on SIGTERM, SIGINT (Ctrl-C) or SIGQUIT, and "
            "reload every watcher on SIGHUP. A second Ctrl-C kills every process at once."
        ),
    )
    parser.add_argument(
        "config", metavar="CONFIG", help="a circus.ini, a supervisord.conf or a Procfile"
    )
    add_procfile_options(parser)
    parser.add_argument("--daemon", action="store_true", help="detach and run in the background")
    parser.add_argument("--pidfile", help="write the daemon's pid here (overrides [circus])")
    parser.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        type=str.lower,
        help="overrides [circus] loglevel (default info)",
    )
    parser.add_argument(
        "--log-output",
        help="'-' for stdout, a file path, or syslog://host:port?facility (overrides [circus])",
    )
    parser.add_argument("--logger-config", help="a logging .ini or .json file (overrides [circus])")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a TCP endpoint reachable from other hosts without CURVE keys",
    )
    parser.set_defaults(handler=handle)


def add_procfile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-s",
        "--scale",
        metavar="TYPE=N,...",
        help="Procfile only: processes per type, like web=3,worker=2 (all=N for every type; "
        "default 1 each)",
    )
    parser.add_argument(
        "-p",
        "--port",
        metavar="PORT",
        help="Procfile only: base port; web.1 gets PORT, web.2 PORT+1, the next type PORT+100 "
        "(default: PORT from .env, then from the environment, then 5000)",
    )


def procfile_environment(args: argparse.Namespace) -> None:
    """-s and -p reach the Procfile translation through the environment, so that
    `reloadconfig` and `restart`, which read the file again, keep them."""
    from bigtop.config.detect import PROCFILE, config_format
    from bigtop.config.procfile import PORT_ENV, SCALE_ENV

    if (args.scale or args.port) and config_format(args.config) != PROCFILE:
        print(
            f"warning: -s/--scale and -p/--port apply to a Procfile, not to {args.config}",
            file=sys.stderr,
        )
    if args.scale:
        os.environ[SCALE_ENV] = args.scale
    if args.port:
        os.environ[PORT_ENV] = args.port


class EarlyStop:
    """SIGTERM and SIGINT until the arbiter's own handlers are in place. As a container's
    PID 1 a signal with no handler is dropped by the kernel, so these go in first; a stop
    asked for while starting is handed to the arbiter, or ends the start."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.arbiter: Arbiter | None = None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        if self.arbiter is not None:
            self.arbiter.loop.call_soon_threadsafe(self.arbiter.request, "quit")


OPEN_FILES_WANTED = 65536


def _raise_open_files_limit(log: Any) -> None:
    """Each process costs the daemon three descriptors (two pipes and a pidfd), so the usual
    soft limit of 1,024 would stop it near 300 processes: raise it towards the hard limit,
    as supervisord does with minfds. Children inherit it (rlimit_nofile sets theirs)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            log.debug("open files limit raised from %d to %d", soft, wanted)
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit above %d: %s", soft, exc)


def import_asyncio_without_tls() -> ModuleType:
    """asyncio, without loading OpenSSL for TLS transports the daemon never opens: importing
    ssl costs the daemon 4.5 MiB of its ~30 MiB resident memory. Only asyncio's own modules
    see no ssl; anything imported later (a hook, aiohttp for httpd) imports ssl normally."""
    if "asyncio" in sys.modules:
        return sys.modules["asyncio"]
    had_ssl = "ssl" in sys.modules
    if not had_ssl:
        sys.modules["ssl"] = None  # type: ignore[assignment]  # makes `import ssl` fail
    try:
        import asyncio
    finally:
        if not had_ssl:
            del sys.modules["ssl"]
    return asyncio


def handle(args: argparse.Namespace) -> int:
    early = EarlyStop()
    early.install()
    asyncio = import_asyncio_without_tls()
    import gc
    import logging

    log = logging.getLogger("bigtop")

    from bigtop.cli.check import gather
    from bigtop.control.endpoints import EndpointError, is_public_tcp, prepare_ipc, resolve
    from bigtop.errors import PidfileError
    from bigtop.runtime.logsetup import setup_logging
    from bigtop.runtime.pidfile import Pidfile

    procfile_environment(args)
    config, problems = gather(args.config, strict=True)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        if problem.severity != "error":
            print(f"warning: {problem}", file=sys.stderr)
    errors_text = [f"error: {p}" for p in errors]
    if errors_text or config is None:
        for line in errors_text:
            print(line, file=sys.stderr)
        print(f"{args.config}: not started; fix the errors above and run again", file=sys.stderr)
        return 1
    circus = config.circus
    endpoints = resolve(circus.endpoint, circus.pubsub_endpoint, circus.stats_endpoint)
    public = [e for e in (endpoints.control, endpoints.pubsub) if is_public_tcp(e)]
    if public and not args.insecure and not circus.curve_secret_key:
        print(
            f"error: {', '.join(public)} can be reached from other hosts, and nothing would "
            "authenticate clients. Bind to 127.0.0.1 or an ipc:// endpoint, set up CURVE keys "
            "(bigtop keygen; [circus] curve_secret_key and curve_authorized_keys), or pass "
            "--insecure if that is really what you want.",
            file=sys.stderr,
        )
        return 1
    if circus.umask is not None:
        os.umask(circus.umask)
    try:
        setup_logging(
            args.log_level or circus.loglevel,
            args.log_output or circus.logoutput,
            args.logger_config or circus.loggerconfig,
        )
    except (OSError, ValueError) as exc:
        print(f"error: cannot set up the daemon's log: {exc}", file=sys.stderr)
        return 1
    if not (args.logger_config or circus.loggerconfig):
        _procfile_log_format(config)
    if circus.debug_gc:
        gc.set_debug(gc.DEBUG_LEAK)
    _raise_open_files_limit(log)
    pidfile_path = args.pidfile or circus.pidfile
    pidfile = Pidfile(pidfile_path) if pidfile_path else None
    try:
        # Refuse before detaching, so `--daemon` still reports these in the terminal.
        if pidfile is not None:
            pidfile.check()
        for endpoint in (endpoints.control, endpoints.pubsub):
            prepare_ipc(endpoint)
    except (PidfileError, EndpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if early.signum is not None:
        print(f"{signal.Signals(early.signum).name} before the start: nothing was started")
        return 128 + early.signum  # as a shell reports a command ended by that signal
    if args.daemon:
        _daemonize()
    try:
        if pidfile is not None and pidfile.create(os.getpid()):
            log.warning("replaced stale pidfile %s", pidfile.path)
    except PidfileError as exc:
        log.error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return int(asyncio.run(_serve(config, early)))
    finally:
        if pidfile is not None:
            pidfile.unlink()


async def _serve(config: Config, early: EarlyStop) -> int:
    """Run the arbiter; `restart` (without a watcher) runs a fresh one from the file."""
    import logging

    import zmq

    from bigtop import __version__
    from bigtop.config.load import load_config
    from bigtop.control.curve import CurveKeyError
    from bigtop.control.endpoints import EndpointError
    from bigtop.errors import ConfigError
    from bigtop.runtime.arbiter import Arbiter
    from bigtop.runtime.sockets import SocketBindError

    log = logging.getLogger("bigtop")
    while True:
        early.install()  # again after a restart: the previous arbiter removed its handlers
        try:
            arbiter = Arbiter(config)
        except CurveKeyError as exc:
            log.error("%s", exc)
            return 1
        early.arbiter = arbiter
        if early.signum is not None:
            log.info("%s while starting: nothing was started", signal.Signals(early.signum).name)
            return 128 + early.signum
        names = ", ".join(w.name for w in config.watchers) or "no watchers"
        log.info(
            "bigtop %s started (pid %d) with %s: %s",
            __version__,
            os.getpid(),
            config.path,
            names,
        )
        try:
            await arbiter.run()
        except (EndpointError, CurveKeyError, SocketBindError, zmq.ZMQError) as exc:
            log.error("%s", exc)
            return 1
        if not arbiter.restart_requested:
            log.info("bigtop stopped")
            return 0
        try:
            config = load_config(config.path)
        except ConfigError as exc:
            log.error("restart: the config has errors, keeping the previous one:\n%s", exc)


def _procfile_log_format(config: Config) -> None:
    """With a Procfile, bigtop's own lines look like the processes': `HH:MM:SS system | ...`
    (as honcho prints them)."""
    import logging

    from bigtop.config.detect import PROCFILE, config_format

    if config_format(config.path) != PROCFILE:
        return
    width = max([len("system"), *(len(w.name) for w in config.watchers)])
    formatter = logging.Formatter(f"%(asctime)s {'system':<{width}} | %(message)s", "%H:%M:%S")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


def _daemonize() -> None:
    """Double fork, new session, stdio to /dev/null (as circusd --daemon)."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
