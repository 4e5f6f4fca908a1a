"""The INI reader: Circus 0.19's parser rules (circus-0.19.md 5.1) and includes."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bigtop.config.ini import RawConfig, parse_text, read_config, strip_inline_comment
from bigtop.errors import ConfigProblem
from tests.helpers import write_ini


def parse(text: str) -> RawConfig:
    raw = RawConfig(main_file="t.ini")
    parse_text(text, "t.ini", raw)
    return raw


def values(raw: RawConfig, section: str) -> dict[str, str]:
    return {key: option.value for key, option in raw.section_options(section).items()}


def errors(raw: RawConfig) -> list[ConfigProblem]:
    return [p for p in raw.problems if p.severity == "error"]


def warnings(raw: RawConfig) -> list[ConfigProblem]:
    return [p for p in raw.problems if p.severity == "warning"]


# --- values -------------------------------------------------------------------------------


def test_percent_signs_are_not_interpolated() -> None:
    raw = parse("[s]\ndate = +%%Y-%m %(name)s\n")
    assert values(raw, "s") == {"date": "+%%Y-%m %(name)s"}


def test_option_names_keep_their_case() -> None:
    raw = parse("[env]\nPath = a\nPATH = b\npath = c\n")
    assert values(raw, "env") == {"Path": "a", "PATH": "b", "path": "c"}


def test_colon_is_a_separator_too_and_spaces_around_it_are_dropped() -> None:
    raw = parse("[s]\ncmd: sleep 1\nargs   =   -x  \n")
    assert values(raw, "s") == {"cmd": "sleep 1", "args": "-x"}


def test_value_of_two_double_quotes_is_empty() -> None:
    raw = parse('[s]\nempty = ""\nquoted = "a"\ncommented = "" ; nothing\n')
    assert values(raw, "s") == {"empty": "", "quoted": '"a"', "commented": ""}


def test_empty_value_is_empty_string() -> None:
    assert values(parse("[s]\nx =\n"), "s") == {"x": ""}


# --- comments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    ["# hash", "; semicolon", "rem a remark", "REM shouting", "Rem mixed", "rem", "   # indented"],
)
def test_comment_lines_are_ignored(line: str) -> None:
    raw = parse(f"[s]\na = 1\n{line}\nb = 2\n")
    assert values(raw, "s") == {"a": "1", "b": "2"}
    assert raw.problems == []


def test_option_starting_with_rem_is_not_a_comment() -> None:
    raw = parse("[s]\nremark = kept\nremote: kept too\n")
    assert values(raw, "s") == {"remark": "kept", "remote": "kept too"}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("cmd = a ; b", "a"),
        ("cmd = a\t; b", "a"),
        ("cmd = a ;", "a"),
        ("x=a;b", "a;b"),
        ("x = a;b ;c", "a;b ;c"),  # only the first ';' is looked at, as in Circus
        ("x = ;starts", ";starts"),
        ("x = a # not a comment", "a # not a comment"),
        ("x = a#b", "a#b"),
    ],
)
def test_inline_comment_only_for_semicolon_after_whitespace(line: str, expected: str) -> None:
    raw = parse(f"[s]\n{line}\n")
    assert next(iter(values(raw, "s").values())) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a ; b", "a"),
        ("a;b", "a;b"),
        ('""', ""),
        ('"" ; c', ""),
        ("  padded  ", "padded"),
        ("", ""),
    ],
)
def test_strip_inline_comment(value: str, expected: str) -> None:
    assert strip_inline_comment(value) == expected


@given(st.text(alphabet=string.printable.replace("\n", "").replace("\r", "")))
def test_strip_inline_comment_keeps_values_without_a_spaced_semicolon(text: str) -> None:
    value = text.lstrip()  # the parser hands over the value without the blanks after '='
    pos = value.find(";")
    if (pos > 0 and value[pos - 1].isspace()) or value.strip() == '""':
        return
    assert strip_inline_comment(value) == value.strip()


# Values a user writes on one line that must come back unchanged: no newlines, no
# surrounding blanks, no ' ;' comment start, not exactly "".
_VALUE_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r")


@given(
    key=st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,15}", fullmatch=True).filter(
        lambda k: k.lower() != "rem"  # `rem = x` is a comment line, as in Circus
    ),
    value=st.text(alphabet=_VALUE_CHARS, max_size=40).map(str.strip),
)
def test_one_line_values_round_trip(key: str, value: str) -> None:
    pos = value.find(";")
    if value == '""' or (pos > 0 and value[pos - 1].isspace()):
        return
    raw = parse(f"[s]\n{key} = {value}\n")
    assert raw.problems == []
    assert values(raw, "s") == {key: value}


# --- continuation lines -------------------------------------------------------------------


def test_only_newline_ends_a_line() -> None:
    raw = parse("[s]\ncmd = echo a\u2028b\x0cc\x85d\x1ce\nnext = 1\n")
    assert raw.problems == []
    assert values(raw, "s") == {"cmd": "echo a\u2028b\x0cc\x85d\x1ce", "next": "1"}


def test_continuation_lines_are_joined_with_newlines() -> None:
    raw = parse("[s]\ncmd = python\n    -m http.server\n\t8000\nnext = 1\n")
    assert values(raw, "s") == {"cmd": "python\n-m http.server\n8000", "next": "1"}


def test_blank_line_inside_a_continuation_is_skipped() -> None:
    raw = parse("[s]\ncmd = a\n\n  b\n")
    assert values(raw, "s") == {"cmd": "a\nb"}


def test_continuation_keeps_semicolons() -> None:
    raw = parse("[s]\ncmd = a\n  b ; c\n")
    assert values(raw, "s") == {"cmd": "a\nb ; c"}


def test_indented_line_right_after_a_header_cannot_be_parsed() -> None:
    raw = parse("[s]\n  x = 1\n")
    assert errors(raw) == [
        ConfigProblem(
            "cannot parse this line: expected 'name = value', a [section] header or a comment",
            file="t.ini",
            line=2,
            value="x = 1",
        )
    ]


# --- duplicates and merging ---------------------------------------------------------------


def test_first_duplicate_option_wins() -> None:
    raw = parse("[s]\nnumprocesses = 1\nnumprocesses = 5\n")
    assert values(raw, "s") == {"numprocesses": "1"}
    assert raw.sections["s"].options["numprocesses"].line == 2


def test_continuation_of_an_ignored_duplicate_is_dropped_without_error() -> None:
    raw = parse("[s]\ncmd = first\ncmd = second\n   more\nafter = 1\n")
    assert raw.problems == []
    assert values(raw, "s") == {"cmd": "first", "after": "1"}


def test_section_seen_again_is_merged_and_first_values_win() -> None:
    raw = parse("[s]\na = 1\n[t]\nx = 0\n[s]\na = 2\nb = 3\n")
    assert values(raw, "s") == {"a": "1", "b": "3"}
    assert list(raw.sections) == ["s", "t"]


def test_default_section_leaks_into_every_section() -> None:
    raw = parse("[DEFAULT]\nshared = d\nnumprocesses = 2\n[a]\nnumprocesses = 4\n[b]\nx = 1\n")
    assert values(raw, "a") == {"shared": "d", "numprocesses": "4"}
    assert values(raw, "b") == {"shared": "d", "numprocesses": "2", "x": "1"}
    assert "DEFAULT" not in raw.sections


def test_no_dunder_name_key_in_sections() -> None:
    raw = parse("[watcher:web]\ncmd = x\n[env]\nA = 1\n")
    assert "__name__" not in raw.section_options("watcher:web")
    assert "__name__" not in raw.section_options("env")


def test_option_names_are_stripped_of_trailing_whitespace() -> None:
    assert values(parse("[s]\ncmd    = x\n"), "s") == {"cmd": "x"}


# --- line numbers and parse errors --------------------------------------------------------


def test_options_remember_file_and_line() -> None:
    raw = parse("# header comment\n\n[s]\na = 1\n\nb = 2\n")
    assert [(o.file, o.line) for o in raw.sections["s"].options.values()] == [
        ("t.ini", 4),
        ("t.ini", 6),
    ]
    assert (raw.sections["s"].file, raw.sections["s"].line) == ("t.ini", 3)


def test_unparsable_lines_are_all_reported_with_line_numbers() -> None:
    raw = parse("[s]\na = 1\njust some words\nb = 2\nmore words\n")
    assert [(p.line, p.value) for p in errors(raw)] == [
        (3, "just some words"),
        (5, "more words"),
    ]
    assert values(raw, "s") == {"a": "1", "b": "2"}  # parsing goes on after a bad line


def test_option_before_any_section_is_an_error() -> None:
    raw = parse("cmd = x\n[s]\n")
    assert errors(raw) == [
        ConfigProblem(
            "option outside of any section: add a [section] header above it",
            file="t.ini",
            line=1,
            value="cmd = x",
        )
    ]


# --- files --------------------------------------------------------------------------------


def test_missing_main_file_is_an_error(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.ini")
    raw = read_config(path)
    assert raw.files == []
    assert raw.problems == [
        ConfigProblem("cannot read the configuration file: No such file or directory", file=path)
    ]


def test_main_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.ini"
    path.write_bytes(b"[s]\nname = caf\xe9\n")
    raw = read_config(str(path))
    assert raw.files == []
    assert len(raw.problems) == 1
    assert raw.problems[0].file == str(path)
    assert raw.problems[0].message.startswith("not valid UTF-8 text")


def test_read_config_reads_a_real_file(tmp_path: Path) -> None:
    path = write_ini(tmp_path, "[watcher:a]\ncmd = sleep 1 ; echo\n")
    raw = read_config(str(path))
    assert raw.files == [str(path)]
    assert values(raw, "watcher:a") == {"cmd": "sleep 1"}
    assert raw.sections["watcher:a"].options["cmd"].file == str(path)


# --- includes -----------------------------------------------------------------------------


def test_include_adds_sections_and_main_file_wins(tmp_path: Path) -> None:
    write_ini(
        tmp_path,
        "[watcher:a]\ncmd = from include\nnumprocesses = 3\n[watcher:b]\ncmd = b\n",
        "extra.ini",
    )
    main = write_ini(tmp_path, "[circus]\ninclude = extra.ini\n[watcher:a]\ncmd = from main\n")
    raw = read_config(str(main))
    assert raw.problems == []
    assert values(raw, "watcher:a") == {"cmd": "from main", "numprocesses": "3"}
    assert values(raw, "watcher:b") == {"cmd": "b"}
    assert raw.sections["watcher:a"].options["numprocesses"].file == str(tmp_path / "extra.ini")
    assert raw.files == [str(main), str(tmp_path / "extra.ini")]


def test_include_globs_are_relative_to_the_including_file_and_sorted(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    write_ini(conf, "[watcher:b]\ncmd = b\n", "b.ini")
    write_ini(conf, "[watcher:a]\ncmd = a\n", "a.ini")
    write_ini(conf, "[watcher:c]\ncmd = c\n", "c.conf")
    main = write_ini(tmp_path, "[circus]\ninclude = conf.d/*.ini\n")
    raw = read_config(str(main))
    assert raw.files == [str(main), str(conf / "a.ini"), str(conf / "b.ini")]
    assert "watcher:c" not in raw.sections


def test_include_with_several_whitespace_separated_patterns(tmp_path: Path) -> None:
    write_ini(tmp_path, "[watcher:x]\ncmd = x\n", "x.ini")
    write_ini(tmp_path, "[watcher:y]\ncmd = y\n", "y.ini")
    main = write_ini(tmp_path, "[circus]\ninclude = x.ini\n   y.ini\n")
    raw = read_config(str(main))
    assert raw.problems == []
    assert {"watcher:x", "watcher:y"} <= set(raw.sections)


def test_absolute_include(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    write_ini(other, "[watcher:abs]\ncmd = a\n", "abs.ini")
    sub = tmp_path / "main"
    sub.mkdir()
    main = write_ini(sub, f"[circus]\ninclude = {other / 'abs.ini'}\n")
    assert "watcher:abs" in read_config(str(main)).sections


def test_include_dir_contributes_its_ini_files(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    write_ini(conf, "[watcher:one]\ncmd = 1\n", "one.ini")
    write_ini(conf, "[watcher:skip]\ncmd = 2\n", "skip.txt")
    main = write_ini(tmp_path, "[circus]\ninclude_dir = conf.d\n")
    raw = read_config(str(main))
    assert raw.problems == []
    assert raw.files == [str(main), str(conf / "one.ini")]


def test_nested_includes_are_relative_to_each_including_file(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    write_ini(sub, "[watcher:deep]\ncmd = deep\n", "deep.ini")
    write_ini(sub, "[circus]\ninclude = deep.ini\n[watcher:mid]\ncmd = mid\n", "mid.ini")
    main = write_ini(tmp_path, "[circus]\ninclude = sub/mid.ini\n")
    raw = read_config(str(main))
    assert raw.problems == []
    assert raw.files == [str(main), str(sub / "mid.ini"), str(sub / "deep.ini")]
    assert {"watcher:mid", "watcher:deep"} <= set(raw.sections)


def test_a_file_included_twice_is_read_once(tmp_path: Path) -> None:
    write_ini(tmp_path, "[watcher:x]\ncmd = x\n", "x.ini")
    write_ini(tmp_path, "[circus]\ninclude = x.ini\n", "y.ini")
    main = write_ini(tmp_path, "[circus]\ninclude = x.ini y.ini\n")
    raw = read_config(str(main))
    assert raw.problems == []
    assert raw.files == [str(main), str(tmp_path / "x.ini"), str(tmp_path / "y.ini")]


def test_include_loop_is_an_error_naming_the_chain(tmp_path: Path) -> None:
    a = tmp_path / "a.ini"
    b = tmp_path / "b.ini"
    write_ini(tmp_path, "[circus]\ninclude = b.ini\n", "a.ini")
    write_ini(tmp_path, "[watcher:w]\ncmd = x\n[circus]\ninclude = a.ini\n", "b.ini")
    raw = read_config(str(a))
    assert errors(raw) == [
        ConfigProblem(
            f"include loop: {a} -> {b} -> {a}",
            file=str(b),
            line=4,
            section="circus",
            option="include",
            value="a.ini",
        )
    ]
    assert raw.files == [str(a), str(b)]


def test_a_file_including_itself_by_name_is_a_loop(tmp_path: Path) -> None:
    main = write_ini(tmp_path, "[circus]\ninclude = circus.ini\n")
    raw = read_config(str(main))
    assert [p.message for p in errors(raw)] == [f"include loop: {main} -> {main}"]


def test_a_glob_matching_the_including_file_is_not_a_loop(tmp_path: Path) -> None:
    # Circus merges the main file into itself harmlessly: `include = *.ini` is accepted.
    write_ini(tmp_path, "[watcher:other]\ncmd = o\n", "other.ini")
    main = write_ini(tmp_path, "[circus]\ninclude = *.ini\n[watcher:main]\ncmd = m\n")
    raw = read_config(str(main))
    assert raw.problems == []
    assert raw.files == [str(main), str(tmp_path / "other.ini")]


def test_include_naming_a_directory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.ini").mkdir()
    main = write_ini(tmp_path, "[circus]\ninclude = x.ini\n", "main.ini")
    raw = read_config(str(main))
    assert errors(raw) == [
        ConfigProblem(
            f"cannot read included file {tmp_path / 'x.ini'}: Is a directory",
            file=str(main),
            line=2,
            section="circus",
            option="include",
            value="x.ini",
        )
    ]


def test_directory_matched_by_include_dir_is_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "conf.d"
    (conf / "odd.ini").mkdir(parents=True)
    main = write_ini(tmp_path, "[circus]\ninclude_dir = conf.d\n")
    raw = read_config(str(main))
    assert [(p.option, p.message) for p in errors(raw)] == [
        ("include_dir", f"cannot read included file {conf / 'odd.ini'}: Is a directory")
    ]


def test_include_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad.ini").write_bytes(b"[watcher:x]\ncmd = \xff\xfe\n")
    main = write_ini(tmp_path, "[circus]\ninclude = bad.ini\n")
    raw = read_config(str(main))
    (problem,) = errors(raw)
    assert problem.file == str(main)
    assert problem.option == "include"
    assert problem.message.startswith(f"cannot read included file {tmp_path / 'bad.ini'}: ")
    assert "not valid UTF-8" in problem.message


def test_include_glob_matching_nothing_is_only_a_warning(tmp_path: Path) -> None:
    main = write_ini(tmp_path, "[watcher:w]\ncmd = x\n[circus]\ninclude = conf.d/*.ini\n")
    raw = read_config(str(main))
    assert errors(raw) == []
    assert warnings(raw) == [
        ConfigProblem(
            f"include 'conf.d/*.ini' matches no file ({tmp_path / 'conf.d' / '*.ini'})",
            file=str(main),
            line=4,
            section="circus",
            option="include",
            severity="warning",
        )
    ]
    assert raw.files == [str(main)]


def test_missing_include_file_is_only_a_warning(tmp_path: Path) -> None:
    main = write_ini(tmp_path, "[circus]\ninclude = gone.ini\n")
    raw = read_config(str(main))
    assert errors(raw) == []
    assert [p.message for p in warnings(raw)] == [
        f"include 'gone.ini' matches no file ({tmp_path / 'gone.ini'})"
    ]


def test_include_dir_that_does_not_exist_is_only_a_warning(tmp_path: Path) -> None:
    main = write_ini(tmp_path, "[circus]\ninclude_dir = nowhere\n")
    raw = read_config(str(main))
    assert errors(raw) == []
    assert warnings(raw) == [
        ConfigProblem(
            f"include_dir 'nowhere' is not a directory ({tmp_path / 'nowhere'})",
            file=str(main),
            line=2,
            section="circus",
            option="include_dir",
            severity="warning",
        )
    ]


def test_parse_errors_in_an_included_file_name_that_file(tmp_path: Path) -> None:
    write_ini(tmp_path, "[watcher:x]\ncmd = x\noops\n", "x.ini")
    main = write_ini(tmp_path, "[circus]\ninclude = x.ini\n")
    raw = read_config(str(main))
    assert [(p.file, p.line, p.value) for p in errors(raw)] == [
        (str(tmp_path / "x.ini"), 3, "oops")
    ]


def test_relative_main_path_includes_relative_to_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    write_ini(conf, "[watcher:x]\ncmd = x\n", "x.ini")
    write_ini(conf, "[circus]\ninclude = x.ini\n")
    monkeypatch.chdir(tmp_path)
    raw = read_config(os.path.join("etc", "circus.ini"))
    assert raw.problems == []
    assert "watcher:x" in raw.sections
