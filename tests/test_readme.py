"""The README's command list shows every option of every command."""

import re

import pytest
import typer
from helpers import ROOT

from keras_pixelcnn.cli import app

pytestmark = pytest.mark.backend_independent  # see conftest.py


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer vendors click)
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


def test_every_option_of_every_command_is_in_the_readme_command_list():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = {}
    for line in block.splitlines():
        match = re.match(r"python cli\.py ((?:show )?[a-z]+)", line)
        if match:
            current = match.group(1)
        if line.strip():
            lines.setdefault(current, []).append(line)
    missing = []
    for path, command in _commands(typer.main.get_command(app)):
        name = " ".join(path)
        text = " ".join(lines.get(name, []))
        assert text, f"`python cli.py {name}` is not in the README's command list"
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--") and opt != "--help" and opt not in text:
                    missing.append(f"{name} {opt}")
    assert not missing, f"not in the README's command list: {missing}"
