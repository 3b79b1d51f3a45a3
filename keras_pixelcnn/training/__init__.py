"""Training with `model.fit`: configuration, callbacks, kill-safe resume,
multi-device engines and the per-backend runtime.

- `config.py`: `TrainConfig`, plain data, and its one validator.
- `trainer.py`: `train(config)`: run setup, build/restore, callbacks, the epoch
  loop and the final report.
- `callbacks.py`: sample grids, the epoch report, the best checkpoint, the
  NaN guard.
- `resume.py`: the backup that makes a killed run resume exactly.
- `distribution.py`: `tf.distribute` and `keras.distribution`.
"""

from keras_pixelcnn.training.config import MODEL_FAMILIES, PRECISIONS, TrainConfig
from keras_pixelcnn.training.trainer import build_model, compile_model, train, warm_start

__all__ = [
    "MODEL_FAMILIES",
    "PRECISIONS",
    "TrainConfig",
    "build_model",
    "compile_model",
    "train",
    "warm_start",
]
