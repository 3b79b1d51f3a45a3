"""The README's command list shows every option of every command."""

import re

import pytest
import typer
from helpers import ROOT, assert_picture

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


def _blocks(language):
    """The README's fenced code blocks of `language`, in order."""
    readme = (ROOT / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", readme, re.S)


def _cheap_commands():
    """The README's runnable `python cli.py` commands that take seconds:
    generate, show data, export, --help (not the synopsis, whose options are
    in brackets, nor training or evaluation runs)."""
    commands = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("&&")[-1].split("#")[0].strip()
            if not line.startswith("python cli.py") or "[" in line:
                continue
            words = line.split()[2:]
            if words[:1] in (["generate"], ["export"]) or words[:2] == ["show", "data"]:
                commands.append(words)
            elif "--help" in words:
                commands.append(words)
    return commands


def test_the_readme_has_the_commands_and_blocks_this_file_runs():
    commands = _cheap_commands()
    assert ["generate", "--overwrite"] in commands  # the install line's generate
    assert [
        "export",
        "--model",
        "saved_models/pixelcnn.keras",
        "--out",
        "pixelcnn_savedmodel",
    ] in commands
    assert len(_blocks("python")) >= 3


@pytest.mark.slow
@pytest.mark.mnist
def test_every_readme_command_and_python_block_runs_as_written(mnist_npz):
    """Bug: the README's Python API snippet read a "mnist.npz" that does not
    exist, and the "Using a trained model" snippet used an undefined
    `images`. Every cheap command (their outputs checked) and then every
    ```python block runs unchanged, each in a fresh process from the
    repository root, in README order (the SavedModel block reads the
    export's output)."""
    import shutil

    from helpers import run_cli, run_python

    shutil.rmtree(ROOT / "pixelcnn_savedmodel", ignore_errors=True)
    for words in _cheap_commands():
        if words[0] == "export" and (ROOT / "pixelcnn_savedmodel").exists():
            words = [*words, "--overwrite"]
        result = run_cli(*words, timeout=600, fresh=True)  # as a user runs it
        assert result.returncode == 0, f"{words}: {result.stderr[-2000:]}"
        if "--help" in words:
            assert "Usage:" in result.stdout
            continue
        out = words[words.index("--out") + 1] if "--out" in words else None
        default = {"generate": "samples.png", "show": "data.png"}.get(words[0])
        target = ROOT / (out or default)
        assert target.exists(), f"{words} did not write {target}"
        if words[0] == "export":
            assert (target / "saved_model.pb").exists()
        else:
            assert_picture(target, 28, 28)
    for block in _blocks("python"):
        # as a user runs it: without the oneDNN variable this test process set
        result = run_python(block, timeout=900, unset=["TF_ENABLE_ONEDNN_OPTS"])
        assert result.returncode == 0, f"{block[:300]}\n...\n{result.stderr[-3000:]}"
        # bug: the blocks imported keras first, which leaves TensorFlow's
        # oneDNN kernels off on this CPU (training 1.4x slower), with a warning
        assert "oneDNN kernels are off" not in result.stderr, block[:300]
