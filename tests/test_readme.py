"""The README and docs/*.md are tested: the exit-code table against deblurd.errors, every command and link they
cite, the quick start against the Makefile and CI, and the README's length (a guide, not a manual)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from deblurd.cli import COMMANDS
from deblurd.config import Config
from deblurd.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250

FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
MODULE = re.compile(r"\bpython3? -m ([A-Za-z_][\w.]*)")
SUBCOMMAND = re.compile(r"(?:^|[\s/])deblurd[ \t]+([a-z][a-z-]*)", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| *(\d+) *\| *(.+?) *\|$")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def code_of(text: str) -> list[str]:
    """What a reader would type or see as code: fenced blocks and inline spans (comments of shell lines dropped)."""
    blocks = [re.sub(r"(^|\s)#.*$", "", block, flags=re.MULTILINE) for block in FENCE.findall(text)]
    return blocks + [span.strip("`") for span in INLINE_CODE.findall(FENCE.sub("", text))]


def prose_of(text: str) -> str:
    """The text with code taken out, so a bracket in a code sample is not read as a link."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def anchors_of(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped except - and _, spaces to hyphens."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", FENCE.sub("", text), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def exit_code_table(text: str) -> list[tuple[int, str]]:
    """The rows of the README's `| code | meaning |` table, in order."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.fullmatch(r"\| *code *\| *meaning *\|", line)), None)
    assert start is not None, "README.md has no `| code | meaning |` exit-code table"
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        match = TABLE_ROW.match(line)
        assert match, f"exit-code table row {line!r} is not `| <code> | <meaning> |`"
        rows.append((int(match[1]), match[2]))
    return rows


def test_readme_exit_code_table_is_deblurd_errors_exit_codes():
    table = exit_code_table(README.read_text())
    expected = [(int(code), text) for code, text in EXIT_CODES.items()]
    assert table == expected, (f"README.md's exit-code table differs from deblurd.errors.EXIT_CODES: only in the "
                               f"README {[r for r in table if r not in expected]}, only in EXIT_CODES "
                               f"{[r for r in expected if r not in table]} (or the order differs)")


def test_readme_stays_a_guide():
    lines = len(README.read_text().splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move detail to docs/ and link to it"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_cited_python_module_exists(doc: Path):
    cited = {name for code in code_of(doc.read_text()) for name in MODULE.findall(code)}
    missing = sorted(name for name in cited if importlib.util.find_spec(name) is None)
    assert not missing, f"{_rel(doc)} cites `python -m` modules that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_cited_deblurd_subcommand_is_registered(doc: Path):
    registered = {command.name for command in COMMANDS}
    cited = {name for code in code_of(doc.read_text()) for name in SUBCOMMAND.findall(code)}
    assert cited <= registered, (f"{_rel(doc)} cites deblurd subcommands that deblurd.cli.COMMANDS does not "
                                 f"register: {sorted(cited - registered)}")


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_relative_link_resolves(doc: Path):
    broken = []
    for target in LINK.findall(prose_of(doc.read_text())):
        if re.match(r"[a-z][a-z+.-]*:", target):
            continue  # http:, https:, mailto: are not checked offline
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target} (no {path})")
        elif anchor and file.suffix == ".md" and anchor not in anchors_of(file.read_text()):
            broken.append(f"{target} (no heading #{anchor} in {_rel(file)})")
    assert not broken, f"{_rel(doc)} has broken links: {broken}"


def test_quick_start_is_make_run_and_make_test_and_ci_runs_make_test():
    text = README.read_text()
    block = re.search(r"^## Quick start$.*?^```sh\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert block, "README.md has no Quick start section with a sh block"
    commands = [line.split("#")[0].strip() for line in block[1].splitlines()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci[-1] == "make test", "CI runs the README's test command"


def test_readme_wiring_names_the_configured_pins():
    """The wiring table names the default button pin and the LED pin the installed config sets."""
    text = README.read_text()
    pi = tomllib.loads((ROOT / "deploy" / "deblurd.toml").read_text())
    assert f"GPIO{Config().gpio.button_pin} " in text
    assert f"GPIO{pi['gpio']['led_pin']} " in text


def test_the_docs_checks_can_fail(tmp_path: Path):
    """The parsers find what they look for: a wrong row, an unknown module, a missing file and anchor."""
    wrong = "| code | meaning |\n|---|---|\n| 0 | fine |\n"
    assert exit_code_table(wrong) == [(0, "fine")] != [(0, EXIT_CODES[0])]
    sample = ("See `python -m tools.nope` and\n```sh\ndeblurd frobnicate --x  # deblurd run\n```\n"
              "[x](missing.md) [y](#nowhere)\n## A `deblurd` heading, here\n")
    code = code_of(sample)
    assert [name for c in code for name in MODULE.findall(c)] == ["tools.nope"]
    assert [name for c in code for name in SUBCOMMAND.findall(c)] == ["frobnicate"]
    assert LINK.findall(prose_of(sample)) == ["missing.md", "#nowhere"]
    assert anchors_of(sample) == {"a-deblurd-heading-here"}
