"""The docs cannot drift from the CLI: every `segstudio <command> ... --flag` that README.md or a
docs/*.md page shows must name a real command (and sub-command) and flags its parser really has.

The parsers are built from `segstudio.cli` in this process (what `segstudio <command> --help`
prints), not by spawning `segstudio`, so the check stays fast. Relative links must point at files that
exist. A failure names the file and line.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from segstudio import cli

ROOT = Path(__file__).resolve().parents[1]

#: `segstudio` (or `.venv/bin/segstudio`) as a command word: not `segstudio/ml`, `segstudio.core`,
#: `segstudio_manifest.json`.
_COMMAND_WORD = re.compile(r"(?:(?<=bin/)|(?<![\w./-]))segstudio(?=\s|$)")
_FLAG = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
#: a token that is clearly meant as a command name (not a path, placeholder or `...`)
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
#: what ends a shell command inside a line
_END_TOKENS = {"|", "||", "&&", ";", "#", ">", "2>", "2>&1"}
#: options `segstudio` itself handles before any command (`cli.main`)
_TOP_LEVEL = {"-h", "--help", "--version"}
#: what may stand before `segstudio` when it is the program run (`python -m`, `sudo -u postgres`, ...)
_LAUNCHER = re.compile(r"(^|&&|;|\||\(|\$|-m|bin/|sudo(\s+-u\s+\S+)?|xvfb-run(\s+-a)?|nohup|time|exec)$")


@dataclass(frozen=True)
class Shown:
    """One `segstudio ...` command line shown in a doc, with where it is shown."""

    file: str
    line: int
    tokens: tuple[str, ...]
    #: `segstudio` starts the shell command (not a word inside other text, such as a database name)
    leads: bool = True

    def where(self) -> str:
        return f"{self.file}:{self.line}: `segstudio {' '.join(self.tokens)}`"


def _code_spans(text: str) -> list[tuple[int, str]]:
    """(line number, code) for every fenced-code line and inline code span of a markdown text.

    Lines outside fences that start with `segstudio` (indented code blocks) count as code too.
    A fenced line ending in a backslash continues on the next line, as in a shell.
    """
    spans: list[tuple[int, str]] = []
    prose: list[str] = []
    lines = text.split("\n")
    fence: str | None = None
    pending: tuple[int, str] | None = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
            prose.append("")
            continue
        if fence is not None:
            prose.append("")
            if stripped.startswith(fence):
                fence = None
                continue
            start, code = pending if pending else (number, "")
            code += " " + stripped
            if code.endswith("\\"):
                pending = (start, code[:-1])
            else:
                pending = None
                spans.append((start, code))
            continue
        if stripped.startswith("segstudio ") or stripped.startswith("$ segstudio "):
            spans.append((number, stripped))
            prose.append("")
            continue
        prose.append(line)
    # inline code spans (they may wrap over lines); backticks inside fences were blanked above
    joined = "\n".join(prose)
    for match in re.finditer(r"(`+)(.+?)\1", joined, flags=re.DOTALL):
        line = joined.count("\n", 0, match.start()) + 1
        spans.append((line, " ".join(match.group(2).split())))
    return spans


def extract_commands(text: str, file: str) -> list[Shown]:
    """Every `segstudio ...` command shown in a markdown text: its tokens up to the end of the command."""
    found: list[Shown] = []
    for line, code in _code_spans(text):
        for match in _COMMAND_WORD.finditer(code):
            tokens: list[str] = []
            for token in code[match.end() :].split():
                if token in _END_TOKENS or token.startswith("#"):
                    break
                tokens.append(token)
            leads = bool(_LAUNCHER.search(code[: match.start()].rstrip()))
            found.append(Shown(file, line, tuple(tokens), leads))
    return found


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _first_positional_choices(parser: argparse.ArgumentParser) -> list[str] | None:
    for action in parser._actions:
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            return list(action.choices) if action.choices is not None else None
    return None


def _takes_value(action: argparse.Action) -> bool:
    return action.nargs != 0


def _parser_for(command: str, cache: dict[str, argparse.ArgumentParser]) -> argparse.ArgumentParser:
    if command not in cache:
        cache[command] = cli.build_parser(command)
    return cache[command]


def check(shown: Shown, cache: dict[str, argparse.ArgumentParser]) -> list[str]:
    """What is wrong with one shown command (empty when its command, sub-commands and flags exist)."""
    tokens = list(shown.tokens)
    if not tokens:
        return []
    first = tokens[0]
    if first.endswith(":"):
        return []  # a message SegStudio prints (`segstudio info: error: ...`), not a command
    leading = 0  # `segstudio --verbose info ...`: options before the command are checked against it
    while leading < len(tokens) - 1 and tokens[leading].startswith("-") and tokens[leading] not in _TOP_LEVEL:
        leading += 1
    if leading and tokens[leading] in cli.COMMANDS:
        return _check_tokens(shown, tokens[leading], tokens[:leading] + tokens[leading + 1 :], cache)
    if first in cli.COMMANDS:
        commands, rest = [first], tokens[1:]
    elif "|" in first and all(part in cli.COMMANDS for part in first.split("|")):
        commands, rest = first.split("|"), tokens[1:]  # `segstudio info|predict|export`
    elif _NAME.match(first) and first not in cli.COMMANDS and not first.startswith("-"):
        if not shown.leads:
            return []  # `host segstudio all ...`: the word inside other text, not the program
        return [f"{shown.where()}: no command {first!r} (commands: {', '.join(cli.COMMANDS)})"]
    else:
        commands, rest = ["gui"], tokens  # `segstudio FOLDER`, `segstudio --version`, `segstudio photos/`
    problems: list[str] = []
    for command in commands:
        problems += _check_tokens(shown, command, rest, cache)
    return problems


def _check_tokens(
    shown: Shown, command: str, tokens: list[str], cache: dict[str, argparse.ArgumentParser]
) -> list[str]:
    parser = _parser_for(command, cache)
    path = [parser]  # parsers from the command down to the chosen sub-command
    names = [command]
    problems: list[str] = []
    first_positional_seen = False
    skip_value = False
    for token in tokens:
        flags = _FLAG.findall(token) if token.startswith(("-", "[", "(", "{")) else []
        if flags:
            skip_value = False
            for flag in flags:
                if command == "gui" and flag in _TOP_LEVEL:
                    continue
                known = {option: action for p in path for option, action in _options(p).items()}
                if flag not in known:
                    problems.append(
                        f"{shown.where()}: `segstudio {' '.join(names)}` has no option {flag} "
                        f"(see `segstudio {' '.join(names)} --help`)"
                    )
                elif "=" not in token and token == flag and _takes_value(known[flag]):
                    skip_value = True
            continue
        if skip_value:  # the value of the flag before it, not a positional
            skip_value = False
            continue
        sub = _subparsers(path[-1])
        if sub is not None:
            if _NAME.match(token):
                if token not in sub.choices:
                    problems.append(
                        f"{shown.where()}: `segstudio {' '.join(names)}` has no sub-command {token!r} "
                        f"(it has: {', '.join(sub.choices)})"
                    )
                    return problems
                path.append(sub.choices[token])
                names.append(token)
            continue
        if not first_positional_seen:
            first_positional_seen = True
            choices = _first_positional_choices(path[-1])
            if choices is not None:
                for part in token.split("|"):
                    if _NAME.match(part) and part not in choices:
                        problems.append(
                            f"{shown.where()}: `segstudio {' '.join(names)}` does not take {part!r} "
                            f"(choices: {', '.join(choices)})"
                        )
    return problems


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# --- the extractor and checker themselves: they must find what is shown, and fail on what is wrong


def test_extractor_finds_commands_in_fences_inline_code_and_indented_blocks():
    text = "\n".join(
        [
            "Run `segstudio predict FOLDER --crf` or",
            "`python -m segstudio train --manifest` and `.venv/bin/segstudio info F --json`",
            "```bash",
            "segstudio export P --format voc \\",
            "    --out D   # comment --not-a-flag",
            "make run",
            "```",
            "",
            "    segstudio import labelme DIR --dry-run",
            "Not code: segstudio/ml/crf.py, `segstudio.core.paths`, `segstudio_manifest.json`.",
        ]
    )
    shown = extract_commands(text, "X.md")
    assert [(s.line, s.tokens) for s in shown] == [
        (4, ("export", "P", "--format", "voc", "--out", "D")),
        (9, ("import", "labelme", "DIR", "--dry-run")),
        (1, ("predict", "FOLDER", "--crf")),
        (2, ("train", "--manifest")),
        (2, ("info", "F", "--json")),
    ]


def test_a_made_up_flag_fails_and_names_file_and_line():
    text = "intro\n\n```\nsegstudio predict photos/ --crf --make-it-better\n```\n"
    problems = [p for s in extract_commands(text, "docs/x.md") for p in check(s, {})]
    assert len(problems) == 1
    assert problems[0].startswith("docs/x.md:4:")
    assert "--make-it-better" in problems[0]


def test_a_made_up_command_or_choice_fails():
    cache: dict[str, argparse.ArgumentParser] = {}
    bad = [Shown("a.md", 1, ("frobnicate", "photos/")), Shown("a.md", 2, ("import", "pascal", "DIR"))]
    problems = [p for s in bad for p in check(s, cache)]
    assert len(problems) == 2
    assert "no command 'frobnicate'" in problems[0]
    assert "'pascal'" in problems[1]


def test_the_word_inside_other_text_is_not_a_command_but_launched_forms_are():
    text = "`host  segstudio  all  10.0.0.0/8` and `sudo -u postgres segstudio frobnicate`"
    shown = extract_commands(text, "a.md")
    assert [s.leads for s in shown] == [False, True]
    assert check(shown[0], {}) == []
    assert "no command 'frobnicate'" in check(shown[1], {})[0]


def test_real_flags_folders_and_top_level_options_pass():
    cache: dict[str, argparse.ArgumentParser] = {}
    good = [
        Shown("a.md", 1, ("photos/", "--project-dir", "DIR")),
        Shown("a.md", 2, ("--version",)),
        Shown("a.md", 3, ("info|predict|export",)),
        Shown("a.md", 4, ("crf", "tune", "FOLDER", "[--dry-run]", "[--json]")),
        Shown("a.md", 5, ("crf", "FOLDER", "[--on|--off]", "[--set", "KEY=VALUE]")),
        Shown("a.md", 6, ("info:", "error:", "remove", "it", "or", "pass", "--whatever")),  # printed output
        Shown("a.md", 7, ("--json", "info", "FOLDER")),  # global options (`cli.main` may strip some) go to it
    ]
    assert [p for s in good for p in check(s, cache)] == []


def test_a_sub_command_is_checked_when_a_command_has_them():
    parser = argparse.ArgumentParser(prog="segstudio demo")
    subs = parser.add_subparsers(dest="action")
    subs.add_parser("sync").add_argument("--dry-run", action="store_true")
    cache = {"demo": parser}
    original = dict(cli.COMMANDS)
    cli.COMMANDS["demo"] = "demo"
    try:
        assert check(Shown("a.md", 1, ("demo", "sync", "--dry-run")), cache) == []
        assert "no sub-command 'push'" in check(Shown("a.md", 2, ("demo", "push")), cache)[0]
        assert "--force" in check(Shown("a.md", 3, ("demo", "sync", "--force")), cache)[0]
    finally:
        cli.COMMANDS.clear()
        cli.COMMANDS.update(original)


# --- the real docs


def test_the_docs_show_commands_at_all():
    """Guards the guard: if extraction silently found nothing, the check below would pass vacuously."""
    shown = [s for path in doc_files() for s in extract_commands(path.read_text(), path.name)]
    commands = {s.tokens[0] for s in shown if s.tokens}
    assert len(shown) > 50
    assert {"predict", "export", "import", "train", "eval", "crf", "info"} <= commands


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_and_flag_the_docs_show_exists(path: Path):
    cache: dict[str, argparse.ArgumentParser] = {}
    relative = str(path.relative_to(ROOT))
    problems = [p for s in extract_commands(path.read_text(), relative) for p in check(s, cache)]
    assert not problems, "the docs show commands or flags the CLI does not have:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_exists(path: Path):
    """The README sends a newcomer to docs/ pages; a moved or renamed page must not leave a dead link."""
    missing = []
    for number, line in enumerate(path.read_text().split("\n"), start=1):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", line):
            if "://" not in target and not (path.parent / target).exists():
                missing.append(f"{path.relative_to(ROOT)}:{number}: {target}")
    assert not missing, "links to files that do not exist:\n" + "\n".join(missing)
