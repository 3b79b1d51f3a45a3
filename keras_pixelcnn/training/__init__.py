"""Training with `model.fit`: configuration, callbacks, kill-safe resume and
multi-device engines.

- `config.py`: `TrainConfig`, plain data, and its one validator.
- `trainer.py`: `train(config)`: run setup, build/restore, callbacks, the epoch
  loop and the final report.
- `callbacks.py`: sample grids, the epoch report, the best checkpoint, the
  NaN guard.
- `resume.py`: the backup that makes a killed run resume exactly.
- `distribution.py`: `tf.distribute` and `keras.distribution`.

Names are imported on first use, so `training.config` (plain data, used by the
command line's option choices) loads without Keras.
"""

import importlib

_API = {
    "MODEL_FAMILIES": "config",
    "PRECISIONS": "config",
    "TrainConfig": "config",
    "build_model": "trainer",
    "compile_model": "trainer",
    "train": "trainer",
    "warm_start": "trainer",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
