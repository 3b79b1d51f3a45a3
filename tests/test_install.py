"""The wheel a user gets from `pip install .`: built, installed into a fresh
virtual environment and run from another directory, so that nothing can lean
on the checkout (the shipped models must come from the package itself).

The fresh environment borrows the dependencies (TensorFlow, Keras, ...) of the
test environment through a .pth file instead of downloading them again; the
editable install of this checkout is not among them (its .pth hook is not run
for borrowed directories), so `keras_pixelcnn` can only come from the wheel.
"""

import os
import subprocess
import sys
import sysconfig
import zipfile

import keras
import pytest
from helpers import ROOT, assert_picture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="backend-independent: runs in the TensorFlow pass",
    ),
]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(base / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (base / "dist").glob("keras_pixelcnn-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    with open(os.path.join(site, "borrowed_dependencies.pth"), "w") as f:
        f.write("\n".join(sorted(borrowed)) + "\n")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return wheel, venv, site


def test_wheel_ships_the_package_and_its_models_but_no_top_level_cli(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "keras_pixelcnn/cli.py" in names and "keras_pixelcnn/__main__.py" in names
    from keras_pixelcnn import shipped

    models = [value for key, value in vars(shipped).items() if key.isupper()]
    assert "photos/pixelcnn_pp_photos.keras" in models  # the notebook's colour model
    for model in models:  # every model the package names, the notebook's colour model too
        assert f"keras_pixelcnn/saved_models/{model}" in names
    assert "cli.py" not in names  # no top-level module named `cli` in site-packages
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]


def test_console_script_generates_from_another_directory(installed, tmp_path):
    _, venv, site = installed
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [venv / "bin" / "keras-pixelcnn", "generate", "--num", "4", "--out", "digits.png"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_picture(tmp_path / "digits.png", 2 * 28, 2 * 28)
    where = subprocess.run(
        [
            venv / "bin" / "python",
            "-c",
            "import keras_pixelcnn, keras_pixelcnn.shipped as s; "
            "print(keras_pixelcnn.__file__); print(s.shipped_dir())",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(path.startswith(site) for path in where), where
    module = subprocess.run(
        [venv / "bin" / "python", "-m", "keras_pixelcnn", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert module.returncode == 0 and "generate" in module.stdout
