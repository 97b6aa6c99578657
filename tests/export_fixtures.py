"""Helpers for the export tests: deterministic weights, small datasets, golden files."""

import os
from pathlib import Path

import numpy as np

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE_GOLDEN = os.environ.get("AI8X_NB_UPDATE_GOLDEN") == "1"

VENDOR_MNIST_YAML = """
arch: ai85net5
dataset: MNIST
layers:
  - {pad: 1, activate: ReLU, out_offset: 0x2000, processors: 0x0000000000000001, data_format: CHW, op: conv2d}
  - {max_pool: 2, pool_stride: 2, pad: 2, activate: ReLU, out_offset: 0, processors: 0xfffffffffffffff0, op: conv2d}
  - {max_pool: 2, pool_stride: 2, pad: 1, activate: ReLU, out_offset: 0x2000, processors: 0xfffffffffffffff0, op: conv2d}
  - {avg_pool: 2, pool_stride: 2, pad: 1, activate: ReLU, out_offset: 0, processors: 0x0ffffffffffffff0, op: conv2d}
  - {op: mlp, flatten: true, out_offset: 0x1000, output_width: 32, processors: 0x0000000000000fff}
"""
"""networks/mnist-chw-ai85.yaml of ai8x-synthesis, as quoted in the ai8x reference (section 6)."""


def data_dir():
    env = os.environ.get("AI8X_NB_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def set_deterministic_weights(model, seed=0, scale=0.4):
    """Give every weight of `model` seeded uniform values in [-scale, scale]."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        shape = tuple(var.shape)
        var.assign(rng.uniform(-scale, scale, size=shape).astype("float32"))
    return model


def random_dataset(name, input_shape, num_classes, *, n_train=40, n_test=24, seed=0):
    """A tiny `Dataset` of random int8 samples (layout of the real one)."""
    from ai8x_nb.datasets import Dataset, Split

    rng = np.random.default_rng(seed)

    def split(split_name, n):
        x = rng.integers(-128, 128, size=(n,) + tuple(input_shape)).astype(np.int8)
        y = rng.integers(0, num_classes, size=n).astype(np.int64)
        return Split(split_name, x, y)

    return Dataset(name, split("train", n_train), split("valid", 8), split("test", n_test),
                   [str(i) for i in range(num_classes)])


def check_golden(name, text):
    """Compare `text` with tests/golden/<name>.yaml (rewrite it when AI8X_NB_UPDATE_GOLDEN=1)."""
    path = GOLDEN_DIR / f"{name}.yaml"
    if UPDATE_GOLDEN:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}; run with AI8X_NB_UPDATE_GOLDEN=1"
    assert text == path.read_text(), (
        f"generated YAML for {name} differs from {path}; if the change is intended, check it "
        f"by hand and regenerate with AI8X_NB_UPDATE_GOLDEN=1")
