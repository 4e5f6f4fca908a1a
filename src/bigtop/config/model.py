"""The typed, frozen configuration model every other part of bigtop reads.

Defaults are Circus 0.19's (circus-0.19.md section 5), except where bigtop.md section 4
says bigtop deliberately differs; those places are marked "bigtop:".
"""

from __future__ import annotations

import msgspec

HOOK_NAMES = (
    "before_start",
    "after_start",
    "before_spawn",
    "after_spawn",
    "before_stop",
    "after_stop",
    "before_signal",
    "after_signal",
    "before_reap",
    "after_reap",
    "extended_stats",
)
# Hooks whose exceptions are taken as success unless configured otherwise (Circus).
IGNORE_ERRORS_BY_DEFAULT = frozenset(
    {"before_stop", "after_stop", "before_signal", "after_signal", "extended_stats"}
)


# Processes one watcher may be asked to run. Past this a request is refused: the kernel could
# not give them pids anyway, and planning a billion slots would hang the daemon.
MAX_NUMPROCESSES = 10_000


class Frozen(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base for config records: immutable, keyword-only."""


class HookConfig(Frozen, frozen=True, kw_only=True):
    name: str
    target: str  # "package.module.callable" (or "module:callable")
    ignore_errors: bool


class StreamConfig(Frozen, frozen=True, kw_only=True):
    class_name: str
    options: dict[str, str] = {}


class FlappingConfig(Frozen, frozen=True, kw_only=True):
    """Giving up on a watcher that keeps dying; only when the config asks for it."""

    attempts: int = 2
    window: float = 1.0
    retry_in: float = 7.0
    max_retry: int = 5  # -1: retry forever


class BackoffConfig(Frozen, frozen=True, kw_only=True):
    initial: float = 0.5
    max: float = 30.0
    reset: float = 1.0  # like supervisord's startsecs: a process up this long is "started"


class WatcherConfig(Frozen, frozen=True, kw_only=True):
    name: str
    cmd: str
    args: str = ""
    numprocesses: int = 1
    warmup_delay: float = 0.0
    working_dir: str | None = None
    uid: str | None = None
    gid: str | None = None
    shell: bool = False
    shell_args: str | None = None
    executable: str | None = None
    copy_env: bool = False
    copy_path: bool = False
    virtualenv: str | None = None
    virtualenv_py_ver: str | None = None
    env: dict[str, str] = {}
    env_file: str | None = None
    send_hup: bool = False
    stop_signal: int = 15
    stop_children: bool = False
    graceful_timeout: float = 30.0
    max_retry: int = 5
    priority: int = 0
    singleton: bool = False
    use_sockets: bool = False
    on_demand: bool = False
    stdin_socket: str | None = None
    close_child_stdin: bool = True
    close_child_stdout: bool = False
    close_child_stderr: bool = False
    respawn: str = "always"  # bigtop: always | on-failure | never
    success_exit_codes: tuple[int, ...] = (0,)
    backoff: BackoffConfig = BackoffConfig()
    flapping: FlappingConfig | None = None
    autostart: bool = True
    max_age: int = 0
    max_age_variance: int = 30
    umask: int | None = None
    rlimits: dict[str, int | None] = {}
    hooks: dict[str, HookConfig] = {}
    stdout_stream: StreamConfig | None = None
    stderr_stream: StreamConfig | None = None
    ready_check: str | None = None  # bigtop: tcp://H:P, http://..., notify, or a command
    ready_timeout: float = 30.0
    health_check: str | None = None  # bigtop: tcp://H:P, http://... or a command
    health_interval: float = 10.0
    health_threshold: int = 3
    depends_on: tuple[str, ...] = ()
    reload_batch: int = 1
    options: dict[str, str] = {}  # free-form keys, kept for plugins and `options`
    source: str = ""  # the file that defined the section


class ArbiterConfig(Frozen, frozen=True, kw_only=True):
    endpoint: str | None = None  # bigtop: None = an ipc socket in the per-user runtime dir
    endpoint_owner: str | None = None
    curve_secret_key: str | None = None  # bigtop: the server's secret certificate file
    curve_authorized_keys: str | None = None  # bigtop: a directory of clients' public certs
    pubsub_endpoint: str | None = None
    stats_endpoint: str | None = None
    statsd: bool = False
    multicast_endpoint: str | None = None  # bigtop: discovery off unless configured
    check_delay: float = 5.0
    warmup_delay: float = 0.0
    umask: int | None = None
    pidfile: str | None = None
    loglevel: str = "info"
    logoutput: str = "-"
    loggerconfig: str | None = None
    httpd: bool = False
    httpd_host: str = "localhost"
    httpd_port: int = 8080
    httpd_token: str | None = None  # bigtop: the dashboard's login token (else random)
    debug: bool = False
    debug_gc: bool = False
    fqdn_prefix: str | None = None
    options: dict[str, str] = {}


class SocketConfig(Frozen, frozen=True, kw_only=True):
    """Parsed fully by the sockets work; kept as strings until then."""

    name: str
    options: dict[str, str] = {}


class PluginConfig(Frozen, frozen=True, kw_only=True):
    name: str
    use: str
    options: dict[str, str] = {}  # every key but `use`, as written (what the plugin reads)
    active: bool = True  # `active = false`: not started
    priority: int = 0  # plugins start highest first


class Config(Frozen, frozen=True, kw_only=True):
    path: str
    circus: ArbiterConfig
    watchers: tuple[WatcherConfig, ...]
    sockets: tuple[SocketConfig, ...] = ()
    plugins: tuple[PluginConfig, ...] = ()
    files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def watcher(self, name: str) -> WatcherConfig | None:
        wanted = name.lower()
        return next((w for w in self.watchers if w.name.lower() == wanted), None)
