"""Distributed training on the existing engines, with two logical CPU devices:
tf.distribute (mirrored, multi-worker on localhost) and keras.distribution."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import ROOT

from keras_pixelcnn.errors import PixelCNNError
from keras_pixelcnn.training.distribution import check_distribute

BACKEND = keras.backend.backend()

# Trains `steps` steps of global batch 16 and prints "ok"; a distributed run also
# draws its sample grid and test NLL. argv: run_dir distribute npz steps
ONE_STEP = r"""
import os, sys
sys.path.insert(0, {root!r})
if os.environ["KERAS_BACKEND"] == "tensorflow" and os.environ.get("TWO_CPUS"):
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_pixelcnn import TrainConfig, load_mnist, train
run_dir, distribute, npz, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
outputs = distribute != "none"  # a single-device run only gives the weights to compare with
mnist = load_mnist(npz, validation_size=16)
train(TrainConfig(run_dir=run_dir, epochs=1, batch_size=16, filters=8, num_residual_blocks=1,
                  num_samples=2 if outputs else 0, limit=16 * steps, distribute=distribute,
                  deterministic=True),
      mnist=mnist, verbose=0, test_nll=outputs)
print("ok")
"""


def _run(run_dir, distribute, npz, steps=1, env=None):
    full = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=BACKEND)
    full.update(env or {})
    return subprocess.run(
        [
            sys.executable,
            "-c",
            ONE_STEP.format(root=str(ROOT)),
            str(run_dir),
            distribute,
            npz,
            str(steps),
        ],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _final_weights(run_dir):
    return keras.saving.load_model(os.path.join(run_dir, "model.keras")).get_weights()


def _assert_same_weights(a, b, atol=1e-5):
    wa, wb = _final_weights(a), _final_weights(b)
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from conftest import make_fake_mnist

    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(path, **make_fake_mnist())
    return str(path)


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    """The weights two steps of global batch 16 give on one device: what the
    distributed runs are compared with (run once for the tests of this module)."""
    run_dir = tmp_path_factory.mktemp("single")
    result = _run(run_dir, "none", data, steps=2)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_unknown_mode_and_wrong_backend():
    with pytest.raises(PixelCNNError, match="unknown distribution mode 'horovod'"):
        check_distribute("horovod")
    other = "data-parallel" if BACKEND == "tensorflow" else "mirrored"
    with pytest.raises(PixelCNNError, match=f"--distribute {other} needs the"):
        check_distribute(other)


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(PixelCNNError, match="TF_CONFIG"):
        check_distribute("multi-worker", backend="tensorflow")


@pytest.mark.slow
def test_two_replicas_equal_one_device(data, single, tmp_path):
    """Global batch 16 on two replicas (8 each) gives the weights of batch 16
    on one device (two steps: the second one uses all-reduced Adam state)."""
    if BACKEND == "tensorflow":
        mode, env = "mirrored", {"TWO_CPUS": "1"}
    elif BACKEND == "jax":
        mode, env = "data-parallel", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    else:
        pytest.skip(f"no distribution engine for {BACKEND}")
    multi = _run(tmp_path / "multi", mode, data, 2, env)
    assert multi.returncode == 0, multi.stderr[-3000:]
    _assert_same_weights(single, tmp_path / "multi")
    for name in (
        "model.keras",
        "metrics.json",
        "log.csv",
        "samples/epoch_001.png",
        "backup/state.json",
    ):
        assert (tmp_path / "multi" / name).exists(), name
    config = json.loads((tmp_path / "multi" / "config.json").read_text())["config"]
    assert config["distribute"] == mode


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.skipif(BACKEND != "tensorflow", reason="MultiWorkerMirroredStrategy is TensorFlow's")
@pytest.mark.slow
def test_multi_worker_on_localhost(data, single, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        full = dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="3",
            KERAS_BACKEND=BACKEND,
            TF_CONFIG=json.dumps(tf_config),
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    ONE_STEP.format(root=str(ROOT)),
                    str(tmp_path / f"w{index}"),
                    "multi-worker",
                    data,
                    "2",
                ],
                cwd=ROOT,
                env=full,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
        assert "ok" in out
    _assert_same_weights(tmp_path / "w0", tmp_path / "w1", atol=0)
    # the two workers together computed the single-device steps of the global batch
    _assert_same_weights(tmp_path / "w0", single)
