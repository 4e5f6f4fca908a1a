"""Run a supervisord.conf as it is.

The file is read with Supervisor's parser rules (configparser's: the *last* value of an option
wins, so an [include]d file overrides the main one; `;` and `#` start an inline comment after
white space; option names are lower-cased), `%(name)s` is expanded as supervisord expands it,
and the result is translated into the raw circus.ini structure (`RawConfig`) that
`bigtop.config.load` validates. The daemon therefore runs a supervisord.conf through the same
code as a circus.ini, and every value keeps the file and line it came from.

Each Supervisor *process* becomes a watcher with one process, named as supervisorctl names
it: `web` for a lone program, `worker:worker_00` for one of numprocs > 1, `group:web` for a
program of a [group:x]. Every option's mapping is described in docs/migration.md; options
with no equivalent are reported once (a warning naming where they are set), never dropped
silently.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bigtop.config import coerce
from bigtop.config.ini import RawConfig, RawOption, RawSection
from bigtop.config.model import BackoffConfig
from bigtop.core.policy import next_delay
from bigtop.errors import ConfigProblem

# ---- reading: configparser's rules, keeping file and line -----------------------------------
_HEADER = re.compile(r"\[(?P<header>.+)\]")
_OPTION = re.compile(r"(?P<option>.*?)\s*[=:]\s*(?P<value>.*)$")


def _comment_start(line: str) -> int | None:
    """Where a comment starts: a line starting with # or ;, or either after white space."""
    if line.strip().startswith(("#", ";")):
        return 0
    for index, char in enumerate(line):
        if char in "#;" and index > 0 and line[index - 1].isspace():
            return index
    return None


def parse_text(text: str, filename: str, into: RawConfig) -> None:
    """Parse one file into `into`; an option given again (here or later) replaces the first."""
    target: dict[str, RawOption] | None = None
    current: RawOption | None = None
    indent = 0
    for number, line in enumerate(text.split("\n"), start=1):
        start = _comment_start(line)
        value = line[:start].strip() if start is not None else line.strip()
        if not value:
            if current is not None and start is None:
                current.value += "\n"  # an empty line inside a value; trailing ones are cut
            continue
        level = len(line) - len(line.lstrip())
        if current is not None and level > indent:
            current.value += "\n" + value
            continue
        indent = level
        header = _HEADER.match(value)
        if header:
            name = header.group("header")
            current = None
            if name == "DEFAULT":
                target = into.defaults
            else:
                target = into.sections.setdefault(name, RawSection(name, filename, number)).options
            continue
        match = _OPTION.match(value)
        if target is None or match is None or not match.group("option").strip():
            message = (
                "option outside of any section: add a [section] header above it"
                if target is None
                else "cannot parse this line: expected 'name = value', a [section] header "
                "or a comment"
            )
            into.problems.append(ConfigProblem(message, file=filename, line=number, value=value))
            current = None
            continue
        current = RawOption(match.group("value").strip(), filename, number)
        target[match.group("option").strip().lower()] = current
    for options in [into.defaults, *(s.options for s in into.sections.values())]:
        for option in options.values():
            option.value = option.value.rstrip()


def _merge(source: RawConfig, into: RawConfig) -> None:
    """What configparser does when it reads one more file: later values replace earlier."""
    into.problems.extend(source.problems)
    into.defaults.update(source.defaults)
    for name, section in source.sections.items():
        existing = into.sections.setdefault(name, RawSection(name, section.file, section.line))
        existing.options.update(section.options)


def _read(path: str, into: RawConfig, where: RawOption | None = None) -> RawConfig | None:
    """One file parsed on its own (None, with a problem recorded, if it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"not valid UTF-8 ({exc.reason})"
        what = "cannot read the configuration file" if where is None else f"cannot read {path}"
        into.problems.append(
            ConfigProblem(
                f"{what}: {reason}",
                file=where.file if where else path,
                line=where.line if where else None,
                section="include" if where else None,
                option="files" if where else None,
            )
        )
        return None
    own = RawConfig(main_file=path)
    parse_text(text, path, own)
    return own


# ---- values -----------------------------------------------------------------------------------
HOST_NODE_NAME = socket.gethostname()
MAX_BYTES_DEFAULT = "50MB"
_BYTE_SIZE = re.compile(r"^(\d+)(kb|mb|gb)?$", re.IGNORECASE)
_BYTE_UNITS = {"": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
_SHELL_VAR = re.compile(r"\$[A-Z][A-Z0-9_]*")
LOG_LEVELS = {
    "critical": "critical",
    "error": "error",
    "warn": "warning",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
    "blather": "debug",
}


def byte_size(text: str) -> int:
    """Supervisor's sizes: 1024, 10KB, 50MB, 1GB (powers of 1024)."""
    match = _BYTE_SIZE.match(text.strip())
    if match is None:
        raise coerce.CoercionError("a size like 1024, 10KB, 50MB or 1GB")
    return int(match.group(1)) * _BYTE_UNITS[(match.group(2) or "").lower()]


def autorestart(text: str) -> str:
    """Supervisor's autorestart as a bigtop respawn mode."""
    word = text.strip().lower()
    if word == "unexpected":
        return "on-failure"
    try:
        return "always" if coerce.to_bool(word) else "never"
    except coerce.CoercionError:
        raise coerce.CoercionError("true, false or unexpected") from None


def _non_negative(text: str) -> int:
    return coerce.to_int(text, minimum=0)


def _integer(text: str) -> int:
    return coerce.to_int(text)


def key_value_pairs(text: str) -> dict[str, str]:
    """`KEY="v",K2=v2`: commas inside quotes belong to the value; quotes are removed."""
    pairs: dict[str, str] = {}
    parts: list[str] = []
    quote = ""
    current = ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == ",":
            parts.append(current)
            current = ""
            continue
        current += char
    if quote:
        raise coerce.CoercionError("KEY=value pairs separated by commas (a quote is not closed)")
    parts.append(current)
    for part in parts:
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or any(c.isspace() for c in key.strip()):
            raise coerce.CoercionError(f"KEY=value pairs separated by commas, not {part.strip()!r}")
        pairs[key.strip()] = value.strip().strip("'\"")
    return pairs


def give_up_window(startsecs: int, attempts: int, backoff: BackoffConfig) -> float:
    """How long `attempts` starts that each die before `startsecs` take at most: the quick
    deaths of a give-up happen within it, deaths of processes that ran longer do not."""
    delays = sum(next_delay(failures, backoff) for failures in range(1, attempts))
    return float((attempts - 1) * startsecs + delays + 1.0)


# ---- the options Supervisor knows -------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """A program option that is the same for every process of the program."""

    default: str | None
    coercer: Callable[[str], Any]


PROGRAM_SETTINGS: dict[str, Setting] = {
    "priority": Setting("999", _integer),
    "autostart": Setting("true", coerce.to_bool),
    "autorestart": Setting("unexpected", autorestart),
    "startsecs": Setting("1", _non_negative),
    "startretries": Setting("3", _non_negative),
    "stopsignal": Setting("TERM", coerce.to_signal),
    "stopwaitsecs": Setting("10", _non_negative),
    "stopasgroup": Setting("false", coerce.to_bool),
    "killasgroup": Setting(None, coerce.to_bool),
    "exitcodes": Setting("0", coerce.to_exit_codes),
    "redirect_stderr": Setting("false", coerce.to_bool),
    "numprocs": Setting("1", _non_negative),
    "numprocs_start": Setting("0", _non_negative),
    "umask": Setting(None, coerce.to_octal),
    "user": Setting(None, str),
    "stdout_logfile_maxbytes": Setting(MAX_BYTES_DEFAULT, byte_size),
    "stdout_logfile_backups": Setting("10", _non_negative),
    "stderr_logfile_maxbytes": Setting(MAX_BYTES_DEFAULT, byte_size),
    "stderr_logfile_backups": Setting("10", _non_negative),
}
# Expanded for each process, with %(process_num)s and the program's own environment.
PROCESS_OPTIONS = (
    "command",
    "process_name",
    "environment",
    "directory",
    "stdout_logfile",
    "stderr_logfile",
)
PROCESS_DEFAULTS = {
    "process_name": "%(program_name)s",
    "stdout_logfile": "AUTO",
    "stderr_logfile": "AUTO",
}
UNMAPPED_PROGRAM_OPTIONS = {
    "serverurl": "children get no SUPERVISOR_SERVER_URL: bigtop does not serve Supervisor's "
    "XML-RPC interface (use bigtop's control commands)",
    "stdout_capture_maxbytes": "no capture mode: Supervisor's event listeners are not supported",
    "stderr_capture_maxbytes": "no capture mode: Supervisor's event listeners are not supported",
    "stdout_events_enabled": "no PROCESS_LOG events; `bigtop logs -f` follows the output",
    "stderr_events_enabled": "no PROCESS_LOG events; `bigtop logs -f` follows the output",
    "stdout_syslog": "output is not sent to syslog; give a log file or read bigtop's stdout",
    "stderr_syslog": "output is not sent to syslog; give a log file or read bigtop's stdout",
}
SUPERVISORD_MAPPED = ("environment", "loglevel", "logfile", "pidfile", "umask", "nodaemon")
UNMAPPED_SUPERVISORD_OPTIONS = {
    "logfile_maxbytes": "the daemon's log is not rotated by bigtop; use logrotate (a moved "
    "log file is reopened)",
    "logfile_backups": "the daemon's log is not rotated by bigtop; use logrotate",
    "minfds": "bigtop does not raise its own limits; set rlimit_nofile on the watchers in a "
    "converted circus.ini (bigtop check --to-ini)",
    "minprocs": "bigtop does not raise its own limits; set rlimit_nproc on the watchers in a "
    "converted circus.ini (bigtop check --to-ini)",
    "childlogdir": "AUTO log files are not written; that output goes to bigtop's stdout",
    "nocleanup": "AUTO log files are not written, so there is nothing to clean up",
    "strip_ansi": "output is written as the programs print it",
    "identifier": "bigtop has no XML-RPC identification",
    "silent": "bigtop's own log goes where logfile (or --log-output) says",
    "user": "bigtop runs as the user who starts it; set user in each [program:x] instead",
    "directory": "bigtop does not change its own directory; set directory in each [program:x]",
}
IGNORED_SECTIONS = {
    "unix_http_server": "bigtop listens on its own control endpoint (a private ipc socket by "
    "default); use `bigtop status` and the other bigtop commands instead of supervisorctl",
    "inet_http_server": "bigtop has no XML-RPC server; `bigtop web` serves a dashboard",
    "supervisorctl": "use `bigtop status`, `bigtop restart NAME` ... instead of supervisorctl",
    "rpcinterface": "bigtop has no XML-RPC interface to extend",
    "ctlplugin": "supervisorctl plugins do not apply to bigtop's CLI",
    "eventlistener": "Supervisor event listeners are not supported; `bigtop events` streams "
    "bigtop's own events",
    "fcgi-program": "FastCGI programs are not translated; write a [watcher:x] with a "
    "[socket:x] and stdin_socket in a circus.ini",
}


# ---- translation ------------------------------------------------------------------------------
@dataclass
class _Notes:
    """Options with no equivalent: one warning per option, naming every place it is set."""

    places: dict[str, list[tuple[str, RawOption]]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def add(self, key: str, reason: str, section: str, option: RawOption) -> None:
        self.places.setdefault(key, []).append((section, option))
        self.reasons.setdefault(key, reason)

    def problems(self) -> list[ConfigProblem]:
        found = []
        for key, places in self.places.items():
            section, first = places[0]
            also = sorted({s for s, _ in places[1:] if s != section})
            more = f" (also in {', '.join(f'[{s}]' for s in also)})" if also else ""
            found.append(
                ConfigProblem(
                    f"no equivalent in bigtop, ignored: {self.reasons[key]}{more}",
                    file=first.file,
                    line=first.line,
                    section=section,
                    option=key.split(" ", 1)[0],
                    severity="warning",
                )
            )
        return found


@dataclass
class Program:
    """The options of one [program:x] that every one of its processes shares."""

    name: str
    section: str
    header: RawOption
    raw: dict[str, RawOption]
    values: dict[str, Any]

    def option(self, key: str) -> RawOption:
        """Where an option was set (the section header when it was not)."""
        return self.raw.get(key, self.header)


class Translator:
    def __init__(self, source: RawConfig, environ: Mapping[str, str], out: RawConfig) -> None:
        self.source = source
        self.out = out
        self.env_names: dict[str, Any] = {f"ENV_{k}": v for k, v in environ.items()}
        self.global_env: dict[str, RawOption] = {}
        self.notes = _Notes()
        self.auto_logs: list[tuple[str, RawOption]] = []
        self.names: dict[str, str] = {}  # lower-cased watcher name -> the section defining it

    # ---- problems ---------------------------------------------------------------------------
    def error(self, message: str, where: RawOption, section: str, **extra: Any) -> None:
        line = where.line or None  # 0: the file as a whole
        problem = ConfigProblem(message, file=where.file, line=line, section=section, **extra)
        if problem not in self.out.problems:  # the processes of a program share their options
            self.out.problems.append(problem)

    def warn(self, message: str, where: RawOption, section: str, **extra: Any) -> None:
        self.error(message, where, section, severity="warning", **extra)

    # ---- expansion --------------------------------------------------------------------------
    def expand(
        self, option: RawOption, names: Mapping[str, Any], section: str, key: str
    ) -> str | None:
        """`%(name)s` expanded as supervisord does (None, with an error, when it cannot be)."""
        if "%" not in option.value:
            return option.value
        here = os.path.dirname(os.path.abspath(option.file))
        try:
            return str(option.value % {"here": here, **names})
        except KeyError as exc:
            known = [*sorted(n for n in names if not n.startswith("ENV_")), "here", "ENV_<NAME>"]
            self.error(
                f"%({exc.args[0]})s cannot be expanded here; known names: {', '.join(known)}",
                option,
                section,
                option=key,
                value=option.value,
            )
        except (ValueError, TypeError) as exc:
            self.error(
                f"badly formatted %-expansion ({exc}); write %% for a literal %",
                option,
                section,
                option=key,
                value=option.value,
            )
        return None

    def setting(
        self, raw: Mapping[str, RawOption], key: str, names: Mapping[str, Any], section: str
    ) -> Any:
        """A program (or group) option expanded and coerced, its default when absent; None
        after recording an error."""
        spec = PROGRAM_SETTINGS[key]
        option = raw.get(key)
        if option is None:
            return None if spec.default is None else spec.coercer(spec.default)
        text = self.expand(option, names, section, key)
        if text is None:
            return None
        try:
            return spec.coercer(text)
        except coerce.CoercionError as exc:
            self.error(f"expected {exc.expected}", option, section, option=key, value=text)
            return None

    # ---- the whole file -------------------------------------------------------------------------
    def run(self) -> None:
        sections = self.source.sections
        if "supervisord" not in sections:
            first = next(iter(sections.values()), None)
            self.warn(
                "no [supervisord] section: supervisord would refuse this file; bigtop runs it",
                RawOption("", first.file if first else self.source.main_file, 0),
                "supervisord",
            )
        circus = self._supervisord()
        grouped = self._groups()
        in_groups = {program for _, _, programs in grouped for program, _ in programs}
        for name in sections:
            kind, _, rest = name.partition(":")
            if kind == "program" and name not in in_groups:
                self._program(name, rest.strip(), None)
        for group, priority, programs in grouped:
            for section, _ in programs:
                self._program(section, section.split(":", 1)[1].strip(), (group, priority))
        self._other_sections()
        self._emit_circus(circus)
        self.out.problems.extend(self.notes.problems())
        self._report_auto_logs()

    def _supervisord(self) -> dict[str, RawOption]:
        """[supervisord]: the global environment and what maps to [circus]."""
        section = "supervisord"
        if section not in self.source.sections:
            return {}
        raw = self.source.section_options(section)
        names = {**self.env_names, "host_node_name": HOST_NODE_NAME}
        circus: dict[str, RawOption] = {}
        environment = raw.get("environment")
        if environment is not None:
            pairs = self._pairs(environment, names, section)
            self.global_env = {
                k: RawOption(v, environment.file, environment.line) for k, v in pairs.items()
            }
            self.env_names.update({f"ENV_{k}": v for k, v in pairs.items()})
        for key, option in raw.items():
            if key == "environment":
                continue  # read above
            if key in SUPERVISORD_MAPPED:
                value = self.expand(option, names, section, key)
                if value is not None:
                    self._supervisord_option(key, option, value, circus)
            elif key in UNMAPPED_SUPERVISORD_OPTIONS:
                self.notes.add(key, UNMAPPED_SUPERVISORD_OPTIONS[key], section, option)
            elif option is not self.source.defaults.get(key):
                self._unknown_option(
                    key, option, section, [*SUPERVISORD_MAPPED, *UNMAPPED_SUPERVISORD_OPTIONS]
                )
        return circus

    def _supervisord_option(
        self, key: str, option: RawOption, value: str, circus: dict[str, RawOption]
    ) -> None:
        section = "supervisord"
        at = RawOption(value, option.file, option.line)
        if key == "loglevel":
            level = LOG_LEVELS.get(value.strip().lower())
            if level is None:
                self.error(
                    "expected one of " + ", ".join(LOG_LEVELS),
                    option,
                    section,
                    option=key,
                    value=value,
                )
                return
            circus["loglevel"] = RawOption(level, option.file, option.line)
        elif key == "logfile":
            stdout = value.strip() in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")
            circus["logoutput"] = RawOption(
                "-" if stdout else os.path.expanduser(value), option.file, option.line
            )
        elif key == "pidfile":
            circus["pidfile"] = RawOption(os.path.expanduser(value), option.file, option.line)
        elif key == "umask":
            circus["umask"] = at
        elif key == "nodaemon":
            try:
                foreground = coerce.to_bool(value)
            except coerce.CoercionError as exc:
                self.error(f"expected {exc.expected}", option, section, option=key, value=value)
                return
            if not foreground:
                self.notes.add(
                    key,
                    "supervisord would detach; bigtop run stays in the foreground (pass "
                    "--daemon to detach)",
                    section,
                    option,
                )

    def _pairs(self, option: RawOption, names: Mapping[str, Any], section: str) -> dict[str, str]:
        text = self.expand(option, names, section, "environment")
        if text is None:
            return {}
        try:
            pairs = key_value_pairs(text)
        except coerce.CoercionError as exc:
            self.error(f"expected {exc.expected}", option, section, option="environment")
            return {}
        for key, value in pairs.items():
            if _SHELL_VAR.search(value):
                self.warn(
                    f"{key}={value}: supervisord passes $NAME through as it is; bigtop, like "
                    "Circus, replaces it with the variable from bigtop's own environment",
                    option,
                    section,
                    option="environment",
                )
        return pairs

    def _groups(self) -> list[tuple[str, int, list[tuple[str, RawOption]]]]:
        """Each [group:x]: its name, priority and (program section, where it is named)."""
        found = []
        for section, header in self.source.sections.items():
            if not section.startswith("group:"):
                continue
            name = section.split(":", 1)[1].strip()
            at = RawOption("", header.file, header.line)
            if not self._valid_name(name, section, at, "group"):
                continue
            raw = self.source.section_options(section)
            names = {**self.env_names, "host_node_name": HOST_NODE_NAME}
            programs_option = raw.get("programs")
            if programs_option is None:
                self.error(
                    "missing 'programs': name the programs of this group, comma-separated",
                    at,
                    section,
                    option="programs",
                )
                continue
            programs_text = self.expand(programs_option, names, section, "programs")
            priority = self.setting(raw, "priority", names, section)
            if programs_text is None or priority is None:
                continue
            members = []
            for program in (p.strip() for p in programs_text.split(",")):
                if not program:
                    continue
                if f"program:{program}" in self.source.sections:
                    members.append((f"program:{program}", programs_option))
                elif f"fcgi-program:{program}" in self.source.sections:
                    continue  # reported with the [fcgi-program:x] section itself
                else:
                    self.error(
                        f"names unknown program {program!r}: add a [program:{program}] section "
                        "or remove it from the list",
                        programs_option,
                        section,
                        option="programs",
                        value=programs_text,
                    )
            for key, option in raw.items():
                if key not in ("programs", "priority") and option is not self.source.defaults.get(
                    key
                ):
                    self._unknown_option(key, option, section, ["programs", "priority"])
            found.append((name, int(priority), members))
        return found

    def _valid_name(self, name: str, section: str, at: RawOption, what: str) -> bool:
        bad = next((c for c in " :/," if c in name), None)
        if not name or bad is not None:
            why = "is empty" if not name else f"contains {bad!r}"
            self.error(
                f"a {what} name {why}; supervisord forbids spaces, ':' and '/', and bigtop "
                "also ','",
                at,
                section,
                value=name,
            )
            return False
        return True

    def _unknown_option(self, key: str, option: RawOption, section: str, known: list[str]) -> None:
        import difflib  # only for an unknown option

        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        self.warn(
            f"unknown option, ignored (as supervisord does){hint}", option, section, option=key
        )

    # ---- programs -------------------------------------------------------------------------------
    def _program(self, section: str, name: str, group: tuple[str, int] | None) -> None:
        header = self.source.sections[section]
        at = RawOption("", header.file, header.line)
        if not self._valid_name(name, section, at, "program"):
            return
        raw = self.source.section_options(section)
        group_name = group[0] if group else name
        common = {
            **self.env_names,
            "program_name": name,
            "group_name": group_name,
            "host_node_name": HOST_NODE_NAME,
        }
        errors = len(self._errors())
        values = {key: self.setting(raw, key, common, section) for key in PROGRAM_SETTINGS}
        self._program_checks(section, raw, values, at)
        if len(self._errors()) > errors:
            return
        if values["killasgroup"] is None:
            values["killasgroup"] = values["stopasgroup"]
        values["priority"] = group[1] if group else values["priority"]
        program = Program(name, section, at, raw, values)
        for key, option in raw.items():
            self._note_program_option(key, option, section)
        start = values["numprocs_start"]
        for process_num in range(start, start + values["numprocs"]):
            names = {**common, "process_num": process_num, "numprocs": values["numprocs"]}
            self._process(program, group_name, names)

    def _errors(self) -> list[ConfigProblem]:
        return [p for p in self.out.problems if p.severity == "error"]

    def _program_checks(
        self, section: str, raw: Mapping[str, RawOption], values: dict[str, Any], at: RawOption
    ) -> None:
        if "command" not in raw:
            self.error(
                "missing 'command': every program needs the command to run",
                at,
                section,
                option="command",
            )
        process_name = raw.get("process_name")
        if (values["numprocs"] or 0) > 1 and (
            process_name is None or "%(process_num)" not in process_name.value
        ):
            self.error(
                "numprocs > 1 needs %(process_num)s in process_name (for example "
                "process_name = %(program_name)s_%(process_num)02d) so each process has a "
                "name of its own",
                process_name or raw.get("numprocs", at),
                section,
                option="process_name",
            )
        if values["numprocs"] == 0:
            self.warn(
                "numprocs = 0: this program runs no process",
                raw.get("numprocs", at),
                section,
                option="numprocs",
            )
        if values["stopasgroup"] and values["killasgroup"] is False:
            self.error(
                "stopasgroup = true needs killasgroup = true (as in supervisord)",
                raw.get("killasgroup", at),
                section,
                option="killasgroup",
            )

    def _note_program_option(self, key: str, option: RawOption, section: str) -> None:
        if key in UNMAPPED_PROGRAM_OPTIONS:
            self.notes.add(key, UNMAPPED_PROGRAM_OPTIONS[key], section, option)
        elif key == "stopasgroup" and option.value.strip().lower() in coerce.TRUE_WORDS:
            self.notes.add(
                "stopasgroup",
                "bigtop sends stopsignal to the process and its direct children "
                "(stop_children), not to its whole process group; after stopwaitsecs SIGKILL "
                "reaches the whole group and every descendant, as with killasgroup",
                section,
                option,
            )
        elif key == "killasgroup" and option.value.strip().lower() in coerce.FALSE_WORDS:
            self.notes.add(
                "killasgroup false",
                "after stopwaitsecs bigtop always kills the whole process group and every "
                "descendant, so nothing is left behind",
                section,
                option,
            )
        elif (
            key not in PROGRAM_SETTINGS
            and key not in PROCESS_OPTIONS
            and option is not self.source.defaults.get(key)
        ):
            known = [*PROGRAM_SETTINGS, *PROCESS_OPTIONS, *UNMAPPED_PROGRAM_OPTIONS]
            self._unknown_option(key, option, section, known)

    def _process(self, program: Program, group: str, names: dict[str, Any]) -> None:
        section = program.section
        raw = program.raw
        expanded: dict[str, str | None] = {}
        env_pairs: dict[str, str] = {}
        if "environment" in raw:
            env_pairs = self._pairs(raw["environment"], names, section)
        names = {**names, **{f"ENV_{k}": v for k, v in env_pairs.items()}}
        for key in (k for k in PROCESS_OPTIONS if k != "environment"):
            option = raw.get(key)
            default = PROCESS_DEFAULTS.get(key)
            if option is None and default is not None:
                option = RawOption(default, program.header.file, program.header.line)
            expanded[key] = None if option is None else self.expand(option, names, section, key)
        process_name = expanded["process_name"]
        command = expanded["command"]
        if process_name is None or command is None:
            return
        at = program.option("process_name")
        if not self._valid_name(process_name, section, at, "process"):
            return
        watcher = process_name if group == process_name else f"{group}:{process_name}"
        if watcher.lower() in self.names:
            self.error(
                f"two processes would be named {watcher!r} (also [{self.names[watcher.lower()]}]);"
                " give them different process_name or program names",
                at,
                section,
                option="process_name",
            )
            return
        self.names[watcher.lower()] = section
        options = self._watcher_options(program, command, expanded)
        if options is None:
            return
        self.out.sections[f"watcher:{watcher}"] = RawSection(
            f"watcher:{watcher}", program.header.file, program.header.line, options
        )
        self._emit_env(watcher, process_name, group, program, env_pairs)

    def _watcher_options(
        self, program: Program, command: str, expanded: Mapping[str, str | None]
    ) -> dict[str, RawOption] | None:
        values = program.values
        options: dict[str, RawOption] = {}

        def put(key: str, value: str, source: str | None = None) -> None:
            where = program.option(source) if source else program.header
            options[key] = RawOption(value, where.file, where.line)

        if values["redirect_stderr"]:
            try:
                words = shlex.split(command)
            except ValueError as exc:
                self.error(
                    f"cannot split into words: {exc}",
                    program.option("command"),
                    program.section,
                    option="command",
                    value=command,
                )
                return None
            # stderr into the stdout pipe, in order, with no process in between (exec)
            put("cmd", f"exec {shlex.join(words)} 2>&1", "command")
            put("shell", "true", "redirect_stderr")
        else:
            put("cmd", command, "command")
        put("numprocesses", "1")
        put("copy_env", "true")
        put("priority", str(-values["priority"]), "priority")  # supervisord: lower starts first
        put("autostart", "true" if values["autostart"] else "false", "autostart")
        put("respawn", values["autorestart"], "autorestart")
        put("success_exit_codes", ", ".join(str(c) for c in values["exitcodes"]), "exitcodes")
        put("stop_signal", coerce.signal_name(values["stopsignal"]), "stopsignal")
        put("graceful_timeout", str(values["stopwaitsecs"]), "stopwaitsecs")
        if values["stopasgroup"]:
            put("stop_children", "true", "stopasgroup")
        if expanded.get("directory"):
            put("working_dir", os.path.expanduser(str(expanded["directory"])), "directory")
        if values["user"]:
            put("uid", values["user"], "user")
        if values["umask"] is not None:
            put("umask", f"{values['umask']:03o}", "umask")
        self._restart_options(values, put)
        self._stream_options(program, expanded, put)
        return options

    @staticmethod
    def _restart_options(values: dict[str, Any], put: Callable[..., None]) -> None:
        """startsecs and startretries: a process that dies before startsecs is a failed
        start; startretries + 1 failed starts in a row and the process is given up (FATAL)."""
        startsecs, retries = values["startsecs"], values["startretries"]
        backoff = BackoffConfig(initial=1.0, max=float(max(1, retries)), reset=float(startsecs))
        put("backoff_initial", "1", "startretries")
        put("backoff_max", f"{backoff.max:g}", "startretries")
        put("backoff_reset", str(startsecs), "startsecs")
        if startsecs == 0:
            return  # supervisord never gives up on a process that is running at once
        attempts = max(2, retries + 1)  # one death alone cannot tell a failed start
        put("flapping.attempts", str(attempts), "startretries")
        put("flapping.window", f"{give_up_window(startsecs, attempts, backoff):g}", "startsecs")
        put("flapping.retry_in", "0", "startretries")
        put("flapping.max_retry", "0", "startretries")  # FATAL: never retried by itself

    def _stream_options(
        self, program: Program, expanded: Mapping[str, str | None], put: Callable[..., None]
    ) -> None:
        values = program.values
        for stream in ("stdout", "stderr"):
            key = f"{stream}_logfile"
            target = expanded.get(key) or "AUTO"
            kind = target.strip().lower()
            if stream == "stderr" and values["redirect_stderr"]:
                if key in program.raw and kind not in ("auto", "none", "off"):
                    self.warn(
                        "redirect_stderr = true sends stderr to the stdout log; this file is "
                        "not written (as in supervisord)",
                        program.option(key),
                        program.section,
                        option=key,
                    )
                continue
            if kind in ("none", "off"):
                put(f"close_child_{stream}", "true", key)
            elif kind == "auto":
                self.auto_logs.append((program.section, program.option(key)))
            elif kind == "syslog":
                self.notes.add(
                    f"{stream}_syslog",
                    UNMAPPED_PROGRAM_OPTIONS[f"{stream}_syslog"],
                    program.section,
                    program.option(key),
                )
            elif target.strip() in _OWN_DEVICES[stream]:
                pass  # bigtop's own stdout/stderr: where uncaptured output goes already
            else:
                path = os.path.expanduser(target.strip())
                device = path.startswith("/dev/")
                put(f"{stream}_stream.class", "FileStream", key)
                put(f"{stream}_stream.filename", path, key)
                maxbytes = 0 if device else values[f"{stream}_logfile_maxbytes"]
                put(f"{stream}_stream.max_bytes", str(maxbytes), f"{key}_maxbytes")
                put(
                    f"{stream}_stream.backup_count",
                    str(values[f"{stream}_logfile_backups"]),
                    f"{key}_backups",
                )

    def _report_auto_logs(self) -> None:
        if not self.auto_logs:
            return
        section, first = self.auto_logs[0]
        programs = sorted({s.split(":", 1)[1] for s, _ in self.auto_logs})
        self.warn(
            "stdout_logfile/stderr_logfile AUTO (the default) for "
            f"{', '.join(programs)}: bigtop writes no AUTO files; that output goes to bigtop's "
            "own stdout/stderr and `bigtop logs NAME` shows it. Give a path to keep log files",
            first,
            section,
        )

    def _emit_env(
        self,
        watcher: str,
        process_name: str,
        group: str,
        program: Program,
        env_pairs: Mapping[str, str],
    ) -> None:
        """SUPERVISOR_* first, then [supervisord] environment, then the program's (the
        order in which supervisord lets one override the other)."""
        at = program.header
        env_at = program.option("environment")
        options = {
            "SUPERVISOR_ENABLED": RawOption("1", at.file, at.line),
            "SUPERVISOR_PROCESS_NAME": RawOption(process_name, at.file, at.line),
            "SUPERVISOR_GROUP_NAME": RawOption(group, at.file, at.line),
        }
        for key, option in self.global_env.items():
            options[key] = RawOption(option.value, option.file, option.line)
        for key, value in env_pairs.items():
            options[key] = RawOption(value, env_at.file, env_at.line)
        name = f"env:{_glob_escape(watcher)}"
        self.out.sections[name] = RawSection(name, at.file, at.line, options)

    # ---- everything else ------------------------------------------------------------------------
    def _other_sections(self) -> None:
        for name, section in self.source.sections.items():
            kind, colon, _ = name.partition(":")
            at = RawOption("", section.file, section.line)
            if name in ("supervisord", "include", "circus") or (
                colon and kind in ("program", "group")
            ):
                continue
            if colon and kind in ("socket", "plugin"):
                self.out.sections[name] = RawSection(
                    name, section.file, section.line, dict(section.options)
                )
                continue
            reason = IGNORED_SECTIONS.get(kind)
            if reason is None:
                self.warn("unknown section, ignored (as supervisord does)", at, name)
            else:
                self.warn(f"not supported, ignored: {reason}", at, name)

    def _emit_circus(self, from_supervisord: dict[str, RawOption]) -> None:
        options = dict(from_supervisord)
        own = self.source.sections.get("circus")
        if own is not None:
            options.update(own.options)  # bigtop's own settings win
        if options:
            first = next(iter(options.values()))
            self.out.sections["circus"] = RawSection("circus", first.file, first.line, options)


_OWN_DEVICES = {
    "stdout": ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"),
    "stderr": ("/dev/stderr", "/dev/fd/2", "/proc/self/fd/2"),
}


def _glob_escape(name: str) -> str:
    """[env:PATTERN] sections match watcher names with fnmatch: quote the glob characters."""
    return re.sub(r"([*?\[])", r"[\1]", name)


# ---- entry points -----------------------------------------------------------------------------
def read_files(path: str, environ: Mapping[str, str]) -> RawConfig:
    """The file and its [include] files merged as supervisord merges them."""
    merged = RawConfig(main_file=path)
    main = _read(path, merged)
    if main is None:
        return merged
    _merge(main, merged)
    merged.files.append(path)
    include = main.sections.get("include")
    if include is None:
        return merged
    files = include.options.get("files")
    if files is None:
        merged.problems.append(
            ConfigProblem(
                "an [include] section needs files = PATTERN ... (paths or globs, relative to "
                "this file)",
                file=include.file,
                line=include.line,
                section="include",
                option="files",
            )
        )
        return merged
    names = {f"ENV_{k}": v for k, v in environ.items()}
    here = os.path.dirname(os.path.abspath(path))
    try:
        patterns = (files.value % {"here": here, "host_node_name": HOST_NODE_NAME, **names}).split()
    except (KeyError, ValueError, TypeError) as exc:
        merged.problems.append(
            ConfigProblem(
                f"cannot expand {exc}",
                file=files.file,
                line=files.line,
                section="include",
                option="files",
                value=files.value,
            )
        )
        return merged
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.join(here, pattern)))
        if not matches:
            merged.problems.append(
                ConfigProblem(
                    f"no file matches {pattern!r} ({os.path.join(here, pattern)})",
                    file=files.file,
                    line=files.line,
                    section="include",
                    option="files",
                    severity="warning",
                )
            )
        for match in matches:
            _include(match, files, merged)
    return merged


def _include(path: str, where: RawOption, merged: RawConfig) -> None:
    if any(os.path.realpath(f) == os.path.realpath(path) for f in merged.files):
        return
    own = _read(path, merged, where)
    if own is None:
        return
    nested = own.sections.get("include")
    if nested is not None:
        own.problems.append(
            ConfigProblem(
                "an [include] inside an included file is not followed (supervisord does not "
                "follow it either); list every file in the main file's [include]",
                file=path,
                line=nested.line,
                section="include",
                severity="warning",
            )
        )
        del own.sections["include"]
    _merge(own, merged)
    merged.files.append(path)


def translate(path: str, environ: Mapping[str, str]) -> RawConfig:
    """A supervisord.conf as the raw circus.ini structure, with every problem found."""
    source = read_files(path, environ)
    out = RawConfig(main_file=path, files=list(source.files), problems=list(source.problems))
    if source.files:
        Translator(source, environ, out).run()
    return out
