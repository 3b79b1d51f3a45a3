"""A colour model's NLL as a code length, beside lossless image codecs.

    python benchmarks/photo_codecs.py --data PHOTO_FOLDER [--model MODEL.keras] [--json out.json]

For each held-out test file of a folder of images (the fixed split of
`keras_pixelcnn.data.load_folder`), cropped to the area its non-overlapping
`size × size` tiles cover:

- the model's bits/dim: the exact NLL of every tile (each coded without its
  surroundings), summed over the photo's tiles, / (pixels × 3 × ln 2);
- PNG (Pillow, `optimize=True`) and WebP lossless (Pillow, `lossless=True,
  quality=100, method=6`) of the whole cropped photograph: file bits /
  (pixels × 3). The codecs see the whole photograph, the model one tile at
  a time.

Without `--model` only the codecs are measured. Prints a table and writes
`--json`.
"""

import argparse
import io
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from keras_pixelcnn import image_folder  # noqa: E402
from keras_pixelcnn.data import load_folder  # noqa: E402


def codec_bits_per_dim(image):
    """{"png": …, "webp": …} bits/dim of a uint8 (h, w, c) array."""
    from PIL import Image

    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    dims = image.size
    out = {}
    for name, options in (
        ("png", {"format": "PNG", "optimize": True}),
        ("webp", {"format": "WEBP", "lossless": True, "quality": 100, "method": 6}),
    ):
        buffer = io.BytesIO()
        picture.save(buffer, **options)
        out[name] = 8 * buffer.tell() / dims
    return out


def measure(folder, size, model=None):
    data = load_folder(folder, size, levels=256)
    rows = []
    for name in data.files["test"]:
        image = image_folder.read_image(os.path.join(folder, name))
        h, w = image.shape[0] // size * size, image.shape[1] // size * size
        image = image[:h, :w]
        row = {"file": name, "pixels": [h, w], **codec_bits_per_dim(image)}
        if model is not None:
            from keras_pixelcnn.evaluation.nll import per_image_nll

            single = image_folder.ImageFolder(folder, [name], [image], np.zeros(1, "int32"), [])
            tiles, _ = image_folder.grid_crops(single, size)
            nats = per_image_nll(model, tiles).sum()
            row["model"] = float(nats / (image.size * math.log(2)))
        rows.append(row)
    total = sum(r["pixels"][0] * r["pixels"][1] for r in rows)
    mean = {
        key: sum(r[key] * r["pixels"][0] * r["pixels"][1] for r in rows) / total
        for key in ("png", "webp", "model")
        if all(key in r for r in rows)
    }
    return {"size": size, "split_rule": data.files["rule"], "photos": rows, "all": mean}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a folder of image files")
    parser.add_argument("--model", help="a colour .keras model (its input size is the tile size)")
    parser.add_argument("--size", type=int, default=32, help="tile size without --model")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    model, size = None, args.size
    if args.model:
        from keras_pixelcnn.keras_file import load_model

        model = load_model(args.model)
        size = model.input_shape[1]
    result = measure(args.data, size, model)
    print(f"{'photo':24} {'pixels':>10} {'model':>7} {'PNG':>7} {'WebP':>7}  (bits/dim)")
    for r in [*result["photos"], {"file": "all", "pixels": None, **result["all"]}]:
        pixels = "" if r["pixels"] is None else f"{r['pixels'][0]}×{r['pixels'][1]}"
        model_bpd = f"{r['model']:.3f}" if "model" in r else "-"
        print(f"{r['file']:24} {pixels:>10} {model_bpd:>7} {r['png']:7.3f} {r['webp']:7.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
