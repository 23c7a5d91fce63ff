"""Every command's --help ends with examples, and every example is a command line that deblurd's own parser
accepts: a renamed option or command fails here instead of in a user's terminal."""

from __future__ import annotations

import re
import shlex

import pytest

from deblurd.cli import COMMANDS, build_parser

SHELL_OPERATORS = ("|", "||", "&&", ";", ">", ">>", "<")


def example_lines(examples: str) -> list[str]:
    """The `deblurd ...` command lines of an EXAMPLES text, each without its explanation (two or more spaces
    set an explanation off) and without what a shell operator hands the output to."""
    commands = []
    for line in examples.splitlines():
        text = re.split(r"\s{2,}", line.strip())[0]
        if text.startswith("deblurd "):
            words = shlex.split(text)
            cut = next((i for i, w in enumerate(words) if w in SHELL_OPERATORS or w.startswith((">", "|"))),
                       len(words))
            commands.append(" ".join(shlex.quote(w) for w in words[:cut]))
    return commands


def refusal(line: str) -> str | None:
    """Why deblurd would refuse a command line (as cli.main parses it: a subcommand is required), or None."""
    try:
        args, extra = build_parser().parse_known_args(shlex.split(line)[1:])
    except SystemExit as exc:
        return f"the parser exits with {exc.code}"
    images_after_an_option = args.command == "deblur" and not any(e.startswith("-") for e in extra)
    return f"unrecognized arguments {extra}" if extra and not images_after_an_option else None


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_command_has_examples_that_its_parser_accepts(command):
    assert command.examples.startswith("examples:\n"), f"`deblurd {command.name} --help` has no examples"
    lines = example_lines(command.examples)
    assert lines, f"{command.name}'s examples show no `deblurd` command"
    for line in lines:
        assert refusal(line) is None, f"`{line}` (in `deblurd {command.name} --help`): {refusal(line)}"


def test_examples_are_shown_by_help(capsys):
    for command in COMMANDS:
        with pytest.raises(SystemExit):
            build_parser().parse_args([command.name, "--help"])
        assert command.examples.strip() in capsys.readouterr().out


def test_a_wrong_example_is_caught():
    assert refusal("deblurd status --no-such") == "unrecognized arguments ['--no-such']"
    assert refusal("deblurd no-such-command") == "the parser exits with 2"
    assert refusal("deblurd collect --out pairs/") == "the parser exits with 2", "--positions is required"
    assert refusal("deblurd deblur a.jpg -o out b.jpg") is None
    assert example_lines("examples:\n  deblurd status --json | jq .fps   for scripts\n  sudo x\n") == [
        "deblurd status --json"]
