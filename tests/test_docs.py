"""The README and the docs stay true: the set-up commands first, links that resolve, every
command-line option in the reference."""

import re
from pathlib import Path

import pytest

from powercells.cli import _parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))


def test_readme_starts_with_the_two_setup_commands_and_stays_short():
    text = (ROOT / "README.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "```sh"
    assert lines[1].startswith("python3 -m venv .venv && ") and " count " in lines[1]
    assert lines[2].startswith("python3 -m venv .venv && ") and "pytest" in lines[2]
    assert lines[3] == "```"
    assert len(text.encode()) <= 10_000


@pytest.mark.parametrize("path", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_relative_links_and_figures_resolve(path):
    text = path.read_text()
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+://", t)]
    missing = [t for t in local if not (path.parent / t).exists()]
    assert not missing, missing


def test_cli_reference_lists_every_command_and_option():
    text = (ROOT / "docs" / "cli.md").read_text()
    parser = _parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():
        assert f"## `powercells {name}`" in text
        for action in command._actions:
            for option in action.option_strings:
                assert option in text, (name, option)
