"""The tutorial notebook runs top to bottom (with tiny settings), so it never rots."""

import json

import keras
import nbformat
import numpy as np
import pytest
from conftest import make_fake_mnist
from helpers import ROOT
from nbclient import NotebookClient

NOTEBOOK = ROOT / "examples" / "pixelcnn_tutorial.ipynb"


@pytest.mark.slow
@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the notebook runs on the default backend: in the TensorFlow pass",
)
def test_tutorial_runs_top_to_bottom(tmp_path):
    data = tmp_path / "mnist.npz"
    np.savez(data, **make_fake_mnist(n_train=96, n_test=8))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("# Parameters")]
    assert len(params) == 1, "the notebook needs exactly one parameters cell"
    params[0].source = (
        f"DATA = {str(data)!r}\nTRAIN_IMAGES = 64\nVALIDATION = 16\n"
        "EPOCHS = 1\nPER_CLASS = 1\nSEED = 0\nMAP_FILTERS = 4\nGRAY_IMAGES = 1\nCOLOUR_IMAGES = 1\n"
    )
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    # data, masks, causality, training, class grid, steps, completions, grayscale samples,
    # the channel-group masks and the colour samples
    assert len(pictures) >= 10
    text = json.dumps([o.get("text", "") for o in outputs])
    assert "reference == cached: True" in text
    assert "DiscretizedLogisticMixture(num_mixtures=10)" in text
    assert "DiscretizedLogisticMixture(num_mixtures=10, channels=3)" in text
    assert "shape (1, 32, 32, 3)" in text
    assert (tmp_path / "runs" / "tutorial_pixelcnn" / "metrics.json").exists()


def test_committed_notebook_has_its_pictures():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "commit the notebook executed"
    pictures = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pictures) >= 10
