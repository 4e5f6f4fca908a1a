"""Give a raw circus.ini its meaning: the typed `Config`, or every problem at once.

Order of work, as in Circus: [env] values get `$VAR` and `$(circus.env.X)` expansion; every
option of every section gets config-time `$(circus.env.X)` substitution (a watcher also sees
its own [env:pattern] variables); then each section is coerced into its record. Nothing is
raised before the whole file has been looked at, so a user sees all their mistakes together.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import re
import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bigtop.config import coerce
from bigtop.config.detect import read_any
from bigtop.config.ini import RawConfig, RawOption
from bigtop.config.model import (
    HOOK_NAMES,
    IGNORE_ERRORS_BY_DEFAULT,
    MAX_NUMPROCESSES,
    ArbiterConfig,
    BackoffConfig,
    Config,
    FlappingConfig,
    HookConfig,
    PluginConfig,
    SocketConfig,
    StreamConfig,
    WatcherConfig,
)
from bigtop.config.sockets import SocketError, parse_socket
from bigtop.config.substitute import env_keys, expand_shell_vars, substitute
from bigtop.errors import ConfigError, ConfigProblem

Coercer = Callable[[str], Any]
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _nonneg_int(text: str) -> int:
    return coerce.to_int(text, minimum=0)


def _process_count(text: str) -> int:
    value = coerce.to_int(text, minimum=0)
    if value > MAX_NUMPROCESSES:
        raise coerce.CoercionError(f"a number of processes from 0 to {MAX_NUMPROCESSES}")
    return value


def _retry_int(text: str) -> int:
    return coerce.to_int(text, minimum=-1)


def _seconds(text: str) -> float:
    return coerce.to_float(text, minimum=0.0)


def _positive_seconds(text: str) -> float:
    value = coerce.to_float(text, minimum=0.0)
    if value <= 0:
        raise coerce.CoercionError("a number of seconds greater than 0")
    return value


def _text(text: str) -> str:
    return text


def _optional_text(text: str) -> str | None:
    return text or None


WATCHER_OPTIONS: dict[str, Coercer] = {
    "cmd": _text,
    "args": _text,
    "numprocesses": _process_count,
    "warmup_delay": _seconds,
    "working_dir": _optional_text,
    "uid": _optional_text,
    "gid": _optional_text,
    "shell": coerce.to_bool,
    "shell_args": _optional_text,
    "executable": _optional_text,
    "copy_env": coerce.to_bool,
    "copy_path": coerce.to_bool,
    "virtualenv": _optional_text,
    "virtualenv_py_ver": _optional_text,
    "env_file": _optional_text,
    "send_hup": coerce.to_bool,
    "stop_signal": coerce.to_signal,
    "stop_children": coerce.to_bool,
    "graceful_timeout": _seconds,
    "max_retry": _retry_int,
    "priority": coerce.to_int,
    "singleton": coerce.to_bool,
    "use_sockets": coerce.to_bool,
    "on_demand": coerce.to_bool,
    "stdin_socket": _optional_text,
    "close_child_stdin": coerce.to_bool,
    "close_child_stdout": coerce.to_bool,
    "close_child_stderr": coerce.to_bool,
    "respawn": coerce.to_respawn,
    "success_exit_codes": coerce.to_exit_codes,
    "autostart": coerce.to_bool,
    "max_age": _nonneg_int,
    "max_age_variance": _nonneg_int,
    "umask": coerce.to_octal,
    "ready_check": _optional_text,
    "ready_timeout": _positive_seconds,
    "health_check": _optional_text,
    "health_interval": _positive_seconds,
    "health_threshold": lambda t: coerce.to_int(t, minimum=1),
    "depends_on": coerce.to_name_list,
    "reload_batch": lambda t: coerce.to_int(t, minimum=1),
}
BACKOFF_OPTIONS: dict[str, Coercer] = {
    "backoff_initial": _positive_seconds,
    "backoff_max": _positive_seconds,
    "backoff_reset": _seconds,
}
FLAPPING_OPTIONS: dict[str, Coercer] = {
    "attempts": lambda t: coerce.to_int(t, minimum=1),
    "window": _positive_seconds,
    "retry_in": _seconds,
    "max_retry": _retry_int,
}
CIRCUS_OPTIONS: dict[str, Coercer] = {
    "endpoint": _optional_text,
    "endpoint_owner": _optional_text,
    "curve_secret_key": _optional_text,
    "curve_authorized_keys": _optional_text,
    "pubsub_endpoint": _optional_text,
    "stats_endpoint": _optional_text,
    "statsd": coerce.to_bool,
    "multicast_endpoint": _optional_text,
    "check_delay": lambda t: coerce.to_float(t, minimum=None),
    "warmup_delay": _seconds,
    "umask": coerce.to_octal,
    "pidfile": _optional_text,
    "loglevel": lambda t: _choice(t.lower(), LOG_LEVELS),
    "logoutput": _text,
    "loggerconfig": _optional_text,
    "httpd": coerce.to_bool,
    "httpd_host": _text,
    "httpd_port": lambda t: coerce.to_int(t, minimum=0),
    "httpd_token": _optional_text,
    "debug": coerce.to_bool,
    "debug_gc": coerce.to_bool,
    "fqdn_prefix": _optional_text,
}
# Read by Circus's own loader and used elsewhere: known, never typos.
CIRCUS_KNOWN_EXTRA = frozenset(
    {"include", "include_dir", "stream_backend", "statsd_close_outputs", "httpd_close_outputs"}
)
WATCHER_KNOWN_EXTRA = frozenset({"check_flapping", "env", "hooks", "copy_env_vars"})
PLUGIN_OPTIONS: dict[str, Coercer] = {"active": coerce.to_bool, "priority": coerce.to_int}
FLAPPING_PLUGIN = "circus.plugins.flapping.Flapping"
FLAPPING_ALIASES = frozenset({FLAPPING_PLUGIN, "flapping", "bigtop.plugins.flapping"})


def _choice(text: str, choices: tuple[str, ...]) -> str:
    if text in choices:
        return text
    raise coerce.CoercionError("one of " + ", ".join(choices))


@dataclass
class _Collector:
    """Problems found while loading, each already located."""

    problems: list[ConfigProblem] = field(default_factory=list)

    def add(self, message: str, raw: RawOption | None = None, **where: Any) -> None:
        if raw is not None:
            where.setdefault("file", raw.file)
            where.setdefault("line", raw.line)
        self.problems.append(ConfigProblem(message, **where))

    def warn(self, message: str, raw: RawOption | None = None, **where: Any) -> None:
        self.add(message, raw, severity="warning", **where)

    @property
    def errors(self) -> list[ConfigProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[ConfigProblem]:
        return [p for p in self.problems if p.severity != "error"]


def load_config(path: str, environ: Mapping[str, str] | None = None) -> Config:
    """Load `path`; raise `ConfigError` listing every error, or return the model."""
    config, problems = check_config(path, environ)
    errors = [p for p in problems if p.severity == "error"]
    if errors or config is None:
        raise ConfigError(errors)
    return config


def check_config(
    path: str, environ: Mapping[str, str] | None = None
) -> tuple[Config | None, list[ConfigProblem]]:
    """Load `path` and return the model (None when there are errors) and every problem."""
    env = dict(os.environ if environ is None else environ)
    raw = read_any(path, env)  # a circus.ini, or a supervisord.conf / Procfile translated
    found = _Collector(list(raw.problems))
    if not raw.files:
        return None, found.problems
    global_env = _global_env(raw, env)
    config_keys = env_keys({**env, **global_env})

    circus = _load_circus(raw, config_keys, found)
    flapping_defaults, plugins = _load_plugins(raw, config_keys, found)
    sockets = _load_sockets(raw, config_keys, found)
    watchers = _load_watchers(raw, env, global_env, flapping_defaults, found)
    _check_dependencies(watchers, raw, found)
    _check_socket_references(watchers, sockets, found)
    _check_sections(raw, found)
    found.problems = _in_reading_order(_located(found.problems, raw), raw.files)
    if found.errors:
        return None, found.problems
    config = Config(
        path=os.path.abspath(path),
        circus=circus,
        watchers=tuple(watchers),
        sockets=tuple(sockets),
        plugins=tuple(plugins),
        files=tuple(raw.files),
        warnings=tuple(str(p) for p in found.warnings),
    )
    return config, found.problems


def _located(problems: list[ConfigProblem], raw: RawConfig) -> list[ConfigProblem]:
    """Every problem names a file: its section's (and line), else the main file."""
    located = []
    for problem in problems:
        if problem.file is None:
            section = raw.sections.get(problem.section or "")
            where = (section.file, section.line) if section else (raw.main_file, None)
            problem = dataclasses.replace(problem, file=where[0], line=problem.line or where[1])
        located.append(problem)
    return located


def _in_reading_order(problems: list[ConfigProblem], files: list[str]) -> list[ConfigProblem]:
    """Problems by file (in the order read) and line, so they read top to bottom."""
    order = {name: index for index, name in enumerate(files)}

    def key(problem: ConfigProblem) -> tuple[int, int]:
        return (order.get(problem.file or "", len(order)), problem.line or 0)

    return sorted(problems, key=key)


def _global_env(raw: RawConfig, environ: Mapping[str, str]) -> dict[str, str]:
    if "env" not in raw.sections:
        return {}
    keys = env_keys(environ)
    return {
        name: substitute(expand_shell_vars(option.value, environ), keys)
        for name, option in raw.section_options("env").items()
    }


def _substituted(raw: RawConfig, section: str, keys: Mapping[str, str]) -> dict[str, RawOption]:
    return {
        name: RawOption(substitute(option.value, keys), option.file, option.line)
        for name, option in raw.section_options(section).items()
    }


def _coerce_into(
    options: Mapping[str, RawOption],
    table: Mapping[str, Coercer],
    section: str,
    found: _Collector,
    prefix: str = "",
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, coercer in table.items():
        option = options.get(prefix + key)
        if option is None:
            continue
        try:
            values[key] = coercer(option.value)
        except coerce.CoercionError as exc:
            found.add(
                f"expected {exc.expected}",
                option,
                section=section,
                option=prefix + key,
                value=option.value,
            )
    return values


def _warn_typo(
    key: str, option: RawOption, known: list[str], section: str, found: _Collector
) -> None:
    import difflib  # only when an unknown option is met

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
    if close:
        found.warn(
            f"unknown option, kept as a free-form option; did you mean {close[0]!r}?",
            option,
            section=section,
            option=key,
        )


def _load_circus(raw: RawConfig, keys: Mapping[str, str], found: _Collector) -> ArbiterConfig:
    if "circus" not in raw.sections:
        return ArbiterConfig()
    options = _substituted(raw, "circus", keys)
    values = _coerce_into(options, CIRCUS_OPTIONS, "circus", found)
    extra = {}
    for key, option in options.items():
        if key not in CIRCUS_OPTIONS and key not in CIRCUS_KNOWN_EXTRA:
            extra[key] = option.value
            _warn_typo(key, option, list(CIRCUS_OPTIONS), "circus", found)
    if values.get("stats_endpoint") and not values.get("statsd"):
        # Circus: an explicit stats_endpoint turns the stream on, even over statsd = false
        if "statsd" in values:
            found.warn(
                "stats_endpoint is set, so statsd is switched on (as in Circus)",
                options["statsd"],
                section="circus",
                option="statsd",
                value=options["statsd"].value,
            )
        values["statsd"] = True
    return ArbiterConfig(**values, options=extra)


def _load_plugins(
    raw: RawConfig, keys: Mapping[str, str], found: _Collector
) -> tuple[dict[str, Any], list[PluginConfig]]:
    flapping: dict[str, Any] = {}
    plugins = []
    for section in raw.sections:
        if not section.startswith("plugin:"):
            continue
        name = section.split(":", 1)[1]
        options = _substituted(raw, section, keys)
        if not options:
            _warn_empty(raw, section, found)
            continue
        use = options.get("use")
        if use is None or not use.value:
            found.add(
                "missing 'use': name the plugin class, e.g. use = circus.plugins.flapping.Flapping",
                file=raw.sections[section].file,
                line=raw.sections[section].line,
                section=section,
                option="use",
            )
            continue
        rest = {k: o.value for k, o in options.items() if k != "use"}
        typed = _coerce_into(options, PLUGIN_OPTIONS, section, found)
        if use.value in FLAPPING_ALIASES and typed.get("active", True):
            flapping = _coerce_into(options, FLAPPING_OPTIONS, section, found)
            flapping["enabled"] = True
        plugins.append(PluginConfig(name=name, use=use.value, options=rest, **typed))
    return flapping, sorted(plugins, key=lambda p: p.name)


def _warn_empty(raw: RawConfig, section: str, found: _Collector) -> None:
    """Circus skips sections without any option; say so, since it is rarely meant."""
    found.warn(
        "empty section, ignored",
        file=raw.sections[section].file,
        line=raw.sections[section].line,
        section=section,
    )


def _load_sockets(raw: RawConfig, keys: Mapping[str, str], found: _Collector) -> list[SocketConfig]:
    sockets: dict[str, SocketConfig] = {}
    for section in raw.sections:
        if not section.startswith("socket:"):
            continue
        name = section.split(":", 1)[1].lower()  # Circus lower-cases socket names
        if not raw.section_options(section):
            _warn_empty(raw, section, found)
            continue
        if name in sockets:
            found.add(
                f"socket {name!r} is defined twice (socket names are case-insensitive)",
                section=section,
                file=raw.sections[section].file,
            )
            continue
        options = _substituted(raw, section, keys)
        socket_config = SocketConfig(name=name, options={k: o.value for k, o in options.items()})
        try:
            parse_socket(socket_config)
        except SocketError as exc:
            found.add(
                f"expected {exc.expected}",
                options.get(exc.option),
                section=section,
                option=exc.option,
                value=exc.value,
                file=raw.sections[section].file,
            )
            continue
        sockets[name] = socket_config
    return [sockets[name] for name in sorted(sockets)]


def _env_sections(raw: RawConfig) -> list[tuple[list[str], str]]:
    found = []
    for section in raw.sections:
        if section.startswith("env:"):
            patterns = [p.strip() for p in section.split(":", 1)[1].split(",") if p.strip()]
            found.append((patterns, section))
    return found


def _load_watchers(
    raw: RawConfig,
    environ: Mapping[str, str],
    global_env: Mapping[str, str],
    flapping_defaults: Mapping[str, Any],
    found: _Collector,
) -> list[WatcherConfig]:
    env_sections = _env_sections(raw)
    seen: dict[str, str] = {}
    watchers = []
    for section in raw.sections:
        if not section.startswith("watcher:"):
            continue
        name = section.split(":", 1)[1]
        if not raw.section_options(section):
            _warn_empty(raw, section, found)
            continue
        if not name.strip():
            found.add("a watcher needs a name: [watcher:NAME]", section=section)
            continue
        if name.lower() in seen:
            found.add(
                f"watchers {seen[name.lower()]!r} and {name!r} differ only by case; watcher "
                "names are case-insensitive, rename one of them",
                section=section,
                file=raw.sections[section].file,
                line=raw.sections[section].line,
            )
            continue
        seen[name.lower()] = name
        env = dict(global_env)
        for patterns, env_section in env_sections:
            if any(fnmatch.fnmatchcase(name, p) for p in patterns):
                for key, option in raw.section_options(env_section).items():
                    env[key] = expand_shell_vars(option.value, environ)
        options = _substituted(raw, section, env_keys({**environ, **env}))
        header = raw.sections[section]
        watcher = _load_watcher(
            name, section, options, env, flapping_defaults, found, (header.file, header.line)
        )
        if watcher is not None:
            watchers.append(watcher)
    return sorted(watchers, key=lambda w: w.name)


def _load_watcher(
    name: str,
    section: str,
    options: Mapping[str, RawOption],
    env: dict[str, str],
    flapping_defaults: Mapping[str, Any],
    found: _Collector,
    header: tuple[str, int],
) -> WatcherConfig | None:
    before = len(found.errors)
    values = _coerce_into(options, WATCHER_OPTIONS, section, found)
    backoff = _coerce_into(options, BACKOFF_OPTIONS, section, found)
    flapping = dict(flapping_defaults)
    flapping.update(_coerce_into(options, FLAPPING_OPTIONS, section, found, prefix="flapping."))
    hooks: dict[str, HookConfig] = {}
    rlimits: dict[str, int | None] = {}
    streams: dict[str, dict[str, str]] = {"stdout_stream": {}, "stderr_stream": {}}
    extra: dict[str, str] = {}
    known = [*WATCHER_OPTIONS, *BACKOFF_OPTIONS]
    for key, option in options.items():
        if key in WATCHER_OPTIONS or key in BACKOFF_OPTIONS:
            continue
        if key.startswith("hooks."):
            hook = _hook(key[6:], option, section, found)
            if hook is not None:
                hooks[hook.name] = hook
        elif key.lower().startswith("rlimit_"):
            _rlimit(key, option, section, found, rlimits)
        elif key.split(".", 1)[0] in streams and "." in key:
            stream, sub = key.split(".", 1)
            streams[stream][sub] = option.value
        else:
            extra[key] = option.value
            if key == "env":
                found.warn(
                    "'env' in a watcher section is ignored (as in Circus); put the variables "
                    f"in an [env:{name}] section",
                    option,
                    section=section,
                    option=key,
                )
            elif key not in WATCHER_KNOWN_EXTRA and not key.startswith("flapping."):
                _warn_typo(key, option, known, section, found)
    cmd = values.get("cmd", "")
    if not cmd.strip():
        found.add(
            "missing 'cmd': every watcher needs the command to run",
            section=section,
            option="cmd",
            file=header[0],
            line=header[1],
        )
    _cross_checks(values, options, section, found)
    if len(found.errors) > before:
        return None
    flapping_config = None
    enabled = flapping.pop("enabled", False) or any(k.startswith("flapping.") for k in options)
    active = options.get("flapping.active")
    if active is not None:
        try:
            enabled = coerce.to_bool(active.value)
        except coerce.CoercionError as exc:
            found.add(f"expected {exc.expected}", active, section=section,
                      option="flapping.active", value=active.value)  # fmt: skip
            return None
    if enabled:
        flapping_config = FlappingConfig(**flapping)
    return WatcherConfig(
        name=name,
        **values,
        env=env,
        backoff=_backoff(backoff, section, options, found),
        flapping=flapping_config,
        hooks=hooks,
        rlimits=rlimits,
        stdout_stream=_stream(streams["stdout_stream"]),
        stderr_stream=_stream(streams["stderr_stream"]),
        options=extra,
        source=header[0],
    )


def _cross_checks(
    values: dict[str, Any], options: Mapping[str, RawOption], section: str, found: _Collector
) -> None:
    raw_cmd = options.get("cmd")
    if raw_cmd is not None and _comment_truncated(raw_cmd):
        found.warn(
            "the text after ' ;' was dropped: Circus reads ' ;' as the start of a comment. "
            "Use shell = true and put the command in a script, or remove the space before ';'",
            raw_cmd,
            section=section,
            option="cmd",
        )
    if values.get("singleton") and values.get("numprocesses", 1) > 1:
        found.add(
            "a singleton watcher runs at most one process; set numprocesses to 0 or 1",
            options.get("numprocesses"),
            section=section,
            option="numprocesses",
            value=options["numprocesses"].value,
        )
    for needs in ("copy_path", "virtualenv"):
        if values.get(needs) and not values.get("copy_env"):
            found.add(
                f"{needs} requires copy_env = true",
                options.get(needs),
                section=section,
                option=needs,
                value=options[needs].value,
            )
    if values.get("numprocesses") == 0 and not values.get("singleton"):
        found.warn(
            "numprocesses = 0: this watcher starts no process until incremented",
            options.get("numprocesses"),
            section=section,
            option="numprocesses",
        )
    if values.get("shell_args") and not values.get("shell"):
        found.warn(
            "shell_args is ignored unless shell = true",
            options.get("shell_args"),
            section=section,
            option="shell_args",
        )


def _comment_truncated(option: RawOption) -> bool:
    try:
        with open(option.file, encoding="utf-8") as handle:
            line = handle.read().split("\n")[option.line - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return False
    value = re.split("[:=]", line, maxsplit=1)[-1]  # option names hold neither ':' nor '='
    pos = value.find(";")
    rest = value[pos + 1 :].strip()
    # a value translated from another format (Procfile) may keep its ' ;': not dropped then
    return pos > 0 and value[pos - 1].isspace() and bool(rest) and rest not in option.value


def _hook(hook_name: str, option: RawOption, section: str, found: _Collector) -> HookConfig | None:
    if hook_name not in HOOK_NAMES:
        found.warn(
            "unknown hook, never called (Circus accepts and ignores it); expected one of "
            + ", ".join(HOOK_NAMES),
            option,
            section=section,
            option=f"hooks.{hook_name}",
        )
        return None
    target, _, flag = option.value.partition(",")
    target = target.strip()
    if not target or "." not in target.replace(":", "."):
        found.add(
            "expected a dotted path to a callable, like mypkg.hooks.check[, true]",
            option,
            section=section,
            option=f"hooks.{hook_name}",
            value=option.value,
        )
        return None
    ignore = hook_name in IGNORE_ERRORS_BY_DEFAULT
    if flag.strip():
        try:
            ignore = coerce.to_bool(flag)
        except coerce.CoercionError as exc:
            found.add(
                f"the flag after the comma: expected {exc.expected}",
                option,
                section=section,
                option=f"hooks.{hook_name}",
                value=option.value,
            )
            return None
    return HookConfig(name=hook_name, target=target, ignore_errors=ignore)


def _rlimit(
    key: str,
    option: RawOption,
    section: str,
    found: _Collector,
    into: dict[str, int | None],
) -> None:
    limit = key[len("rlimit_") :].upper()
    if not hasattr(resource, f"RLIMIT_{limit}"):
        names = sorted(n[7:].lower() for n in dir(resource) if n.startswith("RLIMIT_"))
        found.add(
            "unknown resource limit; expected rlimit_ followed by one of " + ", ".join(names),
            option,
            section=section,
            option=key,
        )
        return
    try:
        into[limit] = coerce.to_rlimit(option.value)
    except coerce.CoercionError as exc:
        found.add(
            f"expected {exc.expected}, or empty for unlimited",
            option,
            section=section,
            option=key,
            value=option.value,
        )


def _stream(options: dict[str, str]) -> StreamConfig | None:
    if not options:
        return None
    rest = dict(options)
    class_name = rest.pop("class", "") or "FileStream"
    return StreamConfig(class_name=class_name, options=rest)


def _backoff(
    values: dict[str, Any],
    section: str,
    options: Mapping[str, RawOption],
    found: _Collector,
) -> BackoffConfig:
    settings = {key.removeprefix("backoff_"): value for key, value in values.items()}
    if "max" not in settings and settings.get("initial", 0) > BackoffConfig().max:
        settings["max"] = settings["initial"]  # a long initial wait implies at least that cap
    backoff = BackoffConfig(**settings)
    if backoff.max < backoff.initial:
        found.add(
            f"backoff_max ({backoff.max:g}) must not be smaller than backoff_initial "
            f"({backoff.initial:g})",
            options.get("backoff_max") or options.get("backoff_initial"),
            section=section,
            option="backoff_max",
        )
    return backoff


_SOCKET_REFERENCE = re.compile(r"(?:\$\(|\(\()circus\.sockets\.([\w.-]+)\)\)?", re.IGNORECASE)


def _check_socket_references(
    watchers: list[WatcherConfig], sockets: list[SocketConfig], found: _Collector
) -> None:
    """A command naming a socket no section defines would get the text, not an fd."""
    names = {s.name for s in sockets}
    for watcher in watchers:
        for option in ("cmd", "args", "stdin_socket"):
            value = getattr(watcher, option) or ""
            wanted = (
                [value.lower()]
                if option == "stdin_socket" and value
                else [m.group(1).lower() for m in _SOCKET_REFERENCE.finditer(value)]
            )
            for name in wanted:
                if name not in names:
                    found.add(
                        f"refers to socket {name!r}, but no [socket:{name}] section defines it; "
                        "add one, or fix the name",
                        file=watcher.source or None,
                        section=f"watcher:{watcher.name}",
                        option=option,
                        value=value,
                    )


def _check_dependencies(watchers: list[WatcherConfig], raw: RawConfig, found: _Collector) -> None:
    """depends_on names existing watchers and has no cycle (the cycle is named)."""
    names = {w.name.lower(): w for w in watchers}
    for watcher in watchers:
        for dependency in watcher.depends_on:
            if dependency.lower() not in names:
                found.add(
                    f"depends on {dependency!r}, which is not a watcher of this config",
                    file=watcher.source or None,
                    section=f"watcher:{watcher.name}",
                    option="depends_on",
                    value=", ".join(watcher.depends_on),
                )
    cycle = find_cycle({n: [d.lower() for d in w.depends_on] for n, w in names.items()})
    if cycle:
        chain = " -> ".join(names[n].name for n in cycle)
        first = names[cycle[0]]
        found.add(
            f"depends_on forms a cycle: {chain}; no watcher of it could ever start",
            file=first.source or None,
            section=f"watcher:{first.name}",
            option="depends_on",
        )


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return None


def _check_sections(raw: RawConfig, found: _Collector) -> None:
    prefixes = ("watcher:", "socket:", "plugin:", "env:")
    for name, section in raw.sections.items():
        if name in ("circus", "env") or name.startswith(prefixes):
            continue
        found.warn(
            "unknown section, ignored; bigtop reads [circus], [watcher:NAME], [socket:NAME], "
            "[plugin:NAME], [env] and [env:PATTERNS]",
            file=section.file,
            line=section.line,
            section=name,
        )
