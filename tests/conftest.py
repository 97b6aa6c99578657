"""Shared fixtures: the real-data folder, golden files, tiny notebooks, notebook test data,
a seeded generator of random hardware models and a warm synthesis tool.

Plain helpers called with arguments live in modules beside this file: `support.py` (the data
folder, deterministic weights, random datasets, QAT-vs-simulation checks), `dataset_files.py`
(small datasets in their real file formats), `numpy_device.py` and `seed_models_ai8xtf.py`
(reference implementations).

`random_hardware_model(seed)` builds a small Keras model from `ai8x_nb.layers`: stacks of
Conv1D / Conv2D / ConvTranspose2D / pool-only / Dense layers with 1/2/4/8-bit weights, with and
without bias, ReLU/Abs/none, fused max/avg pools, wide or 8-bit outputs, for the MAX78000 or
the MAX78002. About 40 % of the models are pushed past one device limit on purpose (kernel
or data memory, layer count, channels, pool-only or padded Conv1D passes, flatten size, bias
memory), so that both verdicts occur. Every model builds: a draw that a layer refuses at
construction is redrawn. The same seed always gives the same model.
"""

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from dataset_files import write_cifar100, write_rps
from support import SHARED_DATA

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
FIXTURE_DATASETS = ("cifar100", "rock")
"""Datasets whose notebooks need a fixture data dir (no real copy offline)."""


# ------------------------------------------------------------------ the real-data folder
def _dataset_folder(folder):
    if not (SHARED_DATA / folder).is_dir():
        pytest.skip(f"no {folder} under {SHARED_DATA} (set AI8X_NB_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data():
    """The offline real-data folder (`support.SHARED_DATA`); skips when it does not exist."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found (set AI8X_NB_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist_data():
    """The real-data folder, skipping when it holds no `mnist/` (tests that read other real
    datasets use it too: MNIST marks a usable offline copy)."""
    return _dataset_folder("mnist")


@pytest.fixture(scope="session")
def kws_data():
    """The real-data folder, skipping when it holds no `kws-espeak/`."""
    return _dataset_folder("kws-espeak")


# ------------------------------------------------------------------ golden files
@pytest.fixture(scope="session")
def check_golden():
    """`check_golden(name, text)`: compare `text` with tests/golden/<name>.yaml.

    With AI8X_NB_UPDATE_GOLDEN=1 the file is rewritten instead.
    """
    update = os.environ.get("AI8X_NB_UPDATE_GOLDEN") == "1"

    def check(name, text):
        path = GOLDEN_DIR / f"{name}.yaml"
        if update:
            GOLDEN_DIR.mkdir(exist_ok=True)
            path.write_text(text)
        assert path.is_file(), f"missing golden file {path}; run with AI8X_NB_UPDATE_GOLDEN=1"
        assert text == path.read_text(), (
            f"generated YAML for {name} differs from {path}; if the change is intended, check it "
            f"by hand and regenerate with AI8X_NB_UPDATE_GOLDEN=1")

    return check


# ------------------------------------------------------------------ notebooks
@pytest.fixture(scope="session")
def tiny_notebook():
    """`tiny_notebook(path, cells, parameters="x = 1")`: write a small notebook.

    A `parameters` cell, then one code cell per source string; returns the path.
    """
    import nbformat

    def write(path, cells, parameters="x = 1"):
        nb = nbformat.v4.new_notebook()
        first = nbformat.v4.new_code_cell(parameters)
        first.metadata["tags"] = ["parameters"]
        nb.cells = [first] + [nbformat.v4.new_code_cell(src) for src in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbformat.write(nb, str(path))
        return Path(path)

    return write


def _write_fixture_data(name, data_dir):
    """Write a small copy of `name` ("cifar100" or "rock") under `data_dir`; returns data_dir."""
    data_dir = Path(data_dir)
    if name == "cifar100":
        write_cifar100(data_dir / "cifar-100-python", n_train=300, n_test=60)
    elif name == "rock":
        write_rps(data_dir, train_per_class=20, test_per_class=6)
    else:
        raise ValueError(f"no fixture data for {name!r}; use one of {FIXTURE_DATASETS}")
    return data_dir


@pytest.fixture(scope="session")
def notebook_parameters():
    """`notebook_parameters(name, tmp_root) -> dict`: papermill parameters pointing a dataset
    notebook at its test data.

    CIFAR-100 and Rock-Paper-Scissors are not available offline, so their notebooks get small
    copies written under `tmp_root` in the real on-disk formats, and the loaders must accept
    them as partial copies; the others read the shared real data.
    """
    def parameters(name, tmp_root):
        if name in FIXTURE_DATASETS:
            data_dir = _write_fixture_data(name, Path(tmp_root) / f"data-{name}")
            return {"data_dir": str(data_dir), "allow_partial": True}
        return {"data_dir": str(SHARED_DATA)}

    return parameters


# ------------------------------------------------------------------ random hardware models
MAX_DRAWS = 50


@dataclasses.dataclass
class GeneratedModel:
    """A generated model and how it was made."""

    seed: int
    model: object
    device: str
    family: str
    push: str  # the limit pushed on purpose, or ""

    @property
    def label(self):
        return f"seed {self.seed} ({self.family}{', ' + self.push if self.push else ''}, " \
               f"{self.device})"


class _Draw:
    """Random choices for one model."""

    def __init__(self, rng, device):
        self.rng, self.device = rng, device

    def pick(self, values, p=None):
        return values[int(self.rng.choice(len(values), p=p))]

    def chance(self, p):
        return bool(self.rng.random() < p)

    def common(self, last=False, wide=False):
        kwargs = {"device": self.device,
                  "weight_bits": self.pick([8, 4, 2, 1], p=[0.55, 0.15, 0.15, 0.15]),
                  "use_bias": self.chance(0.5)}
        if wide:
            kwargs.update(wide=True, activation=None)
        else:
            kwargs["activation"] = self.pick(["relu", "abs", None], p=[0.6, 0.2, 0.2])
        return kwargs

    def pool(self, spatial, rank):
        """Fused pooling arguments that keep every dimension >= 1 (or {})."""
        if not self.chance(0.35):
            return {}
        size = [self.pick([1, 2, 3], p=[0.2, 0.6, 0.2]) for _ in range(rank)]
        if rank == 2 and self.chance(0.7):
            size[1] = size[0]
        stride = self.pick([1, 2, 3], p=[0.3, 0.6, 0.1])
        if any(s < k for s, k in zip(spatial, size)):
            return {}
        return {"pooling": self.pick(["max", "avg"]), "pool_size": tuple(size) if rank == 2
                else size[0], "pool_strides": stride}


def _pooled(spatial, pool):
    if not pool:
        return list(spatial)
    size = pool["pool_size"]
    size = size if isinstance(size, tuple) else (size,)
    return [(s - k) // pool["pool_strides"] + 1 for s, k in zip(spatial, size)]


PUSHES = ("kernel_memory", "tight_kernels", "many_layers", "big_input", "pool_only_channels",
          "padded_conv1d_channels", "flatten_pixels", "bias_outputs", "dense_inputs")


def _conv2d_stack(d, L, keras, push):
    size = d.pick([8, 12, 16, 20, 24, 32])
    spatial = [size, size if d.chance(0.7) else d.pick([8, 12, 16])]
    channels = d.pick([1, 2, 3, 4, 5, 8, 16, 17, 20, 32, 48, 64, 96],
                      p=[.12, .05, .16, .06, .04, .1, .08, .04, .07, .08, .07, .08, .05])
    if push == "big_input":  # past the HWC pixels of one data-memory instance
        size = 96 if d.device == "MAX78000" else 150
        spatial, channels = [size, size], d.pick([3, 20])
    if push == "tight_kernels":  # many wide 3x3 layers: the placement decides
        spatial, channels = [4, 4], d.pick([16, 32, 64])
    inputs = keras.Input(tuple(spatial) + (channels,))
    count = d.pick([1, 2, 3, 4, 5, 6])
    if push == "many_layers":
        count = d.pick([33, 36]) if d.device == "MAX78000" else d.pick([129, 131])
    elif push == "big_input":
        count = d.pick([1, 2])
    elif push == "tight_kernels":
        count = d.pick([6, 8, 10, 12])
    x, spatial, wide = _conv2d_layers(d, L, inputs, spatial, count, push)
    return inputs, x, spatial, wide


def _conv2d_layers(d, L, x, spatial, count, push):
    """`count` random 2D layers after `x`; returns the output, its size and wideness."""
    wide = False
    pushed_at = d.pick(list(range(count))) if push else -1
    for i in range(count):
        kind = d.pick(["conv", "pool", "transpose"], p=[0.78, 0.12, 0.10])
        if i == count - 1 or push == "tight_kernels":
            kind = "conv"  # every model has a layer with weights
        if push == "pool_only_channels" and i == pushed_at:
            x = L.Conv2D(d.pick([72, 100, 128]), 1, padding=0, device=d.device)(x)
            kind = "pool"
        if kind == "pool" and min(spatial) >= 2:
            strides = d.pick([1, 2])
            cls = d.pick([L.MaxPool2D, L.AvgPool2D])
            x = cls(pool_size=2, pool_strides=strides, device=d.device)(x)
            spatial, wide = [(s - 2) // strides + 1 for s in spatial], False
            continue
        if kind == "transpose" and max(spatial) <= 12 and push != "many_layers":
            pool = d.pool(spatial, 2)
            pad = d.pick([0, 1, 2])
            x = L.ConvTranspose2D(d.pick([3, 4, 8, 16, 24]), 3, padding=pad, **pool,
                                  **d.common())(x)
            spatial = [2 * s + 2 - 2 * pad for s in _pooled(spatial, pool)]
            wide = False
            continue
        pool = d.pool(spatial, 2)
        pooled = _pooled(spatial, pool)
        kernel = d.pick([1, 3], p=[0.3, 0.7])
        pad = 0 if kernel == 1 else d.pick([0, 1, 2], p=[0.2, 0.7, 0.1])
        if kernel == 3 and pad == 0 and min(pooled) < 3:
            pad = 1
        filters = d.pick([1, 4, 5, 8, 12, 13, 16, 20, 24, 32, 48, 64, 72, 100, 128],
                         p=[.02, .09, .03, .11, .09, .03, .11, .07, .07, .09, .07, .08, .05,
                            .05, .04])
        if push == "many_layers":
            filters, kernel, pad, pool, pooled = 4, 1, 0, {}, spatial
        if push == "big_input":  # keep the simulation cheap; no pooling before the limit
            filters, pool, pooled = min(filters, 16), {}, spatial
        if push == "tight_kernels":
            filters, kernel, pad, pool, pooled = d.pick([48, 64, 96, 128]), 3, 1, {}, spatial
        if push == "kernel_memory" and i == pushed_at:
            filters, kernel, pad = d.pick([256, 400, 512]), 3, 1
        if push == "bias_outputs" and i == pushed_at:
            filters, kernel, pad, pool, pooled = d.pick([520, 600]), 1, 0, {}, spatial
        wide = i == count - 1 and d.chance(0.4)
        kwargs = d.common(wide=wide)
        if push == "bias_outputs" and i == pushed_at:
            kwargs["use_bias"] = True
        x = L.Conv2D(filters, kernel, padding=pad, **pool, **kwargs)(x)
        spatial = [s + 2 * pad - kernel + 1 for s in pooled]
    return x, spatial, wide


def _conv1d_stack(d, L, keras, push, to_2d=False):
    length = d.pick([16, 24, 32, 48, 64])
    channels = d.pick([1, 2, 4, 8, 16, 32, 64, 100, 128])
    if push == "padded_conv1d_channels":
        channels = d.pick([72, 100, 128])
    inputs = keras.Input((length, channels))
    x, spatial, wide = inputs, [length], False
    count = d.pick([1, 2, 3, 4])
    for i in range(count):
        if d.chance(0.12) and spatial[0] >= 2 and i < count - 1 and not to_2d:
            cls = d.pick([L.MaxPool1D, L.AvgPool1D])
            x = cls(pool_size=2, pool_strides=d.pick([1, 2]), device=d.device)(x)
            spatial, wide = [int(x.shape[1])], False
            continue
        pool = d.pool(spatial, 1)
        pooled = _pooled(spatial, pool)
        kernel = d.pick(list(range(1, 10)))
        kernel = min(kernel, pooled[0])
        pad = d.pick(list(range(0, min(2, kernel - 1) + 1)))
        if push == "padded_conv1d_channels" and i == 0:
            kernel, pad = max(kernel, 2), 1
        filters = d.pick([4, 8, 16, 32, 64, 100])
        wide = i == count - 1 and d.chance(0.4)
        if to_2d:  # keep the length a product of two sizes for the Reshape
            kernel, pad, pool, pooled, wide = 1, 0, {}, spatial, False
        x = L.Conv1D(filters, kernel, padding=pad, **pool, **d.common(wide=wide))(x)
        spatial = [pooled[0] + 2 * pad - kernel + 1]
    if to_2d:  # 1D -> 2D, as the keyword-spotting model does (YAML in_dim)
        rows = d.pick([2, 4, 8])
        x = keras.layers.Reshape((rows, spatial[0] // rows, int(x.shape[-1])))(x)
        x, spatial, wide = _conv2d_layers(d, L, x, [rows, spatial[0] // rows],
                                          d.pick([1, 2, 3]), "")
    return inputs, x, spatial, wide


def _dense_head(d, L, keras, x):
    x = keras.layers.Flatten()(x)
    if d.chance(0.3) and x.shape[-1] <= 1024:
        x = L.Dense(d.pick([8, 16, 32, 64, 100]), **d.common())(x)
    wide = d.chance(0.6)
    return L.Dense(d.pick([2, 3, 5, 10, 16, 21]), **d.common(wide=wide))(x)


def _dense_only(d, L, keras, push):
    features = d.pick([8, 16, 32, 64, 100, 200, 512])
    if push == "dense_inputs":
        features = d.pick([1100, 1500])
    inputs = keras.Input((features,))
    x = inputs
    count = d.pick([1, 2, 3])
    for i in range(count):
        last = i == count - 1
        wide = last and d.chance(0.5)
        x = L.Dense(d.pick([4, 10, 16, 32, 64, 100, 128]), **d.common(wide=wide))(x)
    return inputs, x


def _build(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78000" if seed % 2 == 0 else "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(PUSHES)) if d.chance(0.4) else ""
    family = d.pick(["conv2d", "conv1d", "conv1d_2d", "dense"], p=[0.6, 0.15, 0.1, 0.15])
    if push in ("padded_conv1d_channels",):
        family = "conv1d"
    elif push == "dense_inputs":
        family = "dense"
    elif push and family != "conv2d":
        family = "conv2d"
    if family == "dense":
        inputs, x = _dense_only(d, L, keras, push)
    else:
        if family in ("conv1d", "conv1d_2d"):
            inputs, x, spatial, wide = _conv1d_stack(d, L, keras, push,
                                                     to_2d=family == "conv1d_2d")
        elif push == "flatten_pixels":
            size = d.pick([18, 20, 24])
            inputs = keras.Input((size, size, d.pick([1, 3, 8])))
            x = L.Conv2D(d.pick([2, 4]), 3, padding=1, **d.common())(inputs)
            spatial, wide = [size, size], False
        else:
            inputs, x, spatial, wide = _conv2d_stack(d, L, keras, push)
        small = int(np.prod(spatial)) <= 320
        if not wide and (push == "flatten_pixels" or (small and d.chance(0.55))):
            x = _dense_head(d, L, keras, x)
    model = keras.Model(inputs, x, name=f"g{seed}")
    return GeneratedModel(seed, model, device, family, push)


RESIDUAL_PUSHES = ("many_layers", "kernel_memory", "input_operand", "big_input",
                   "multipass_operands")


def _eltwise(d, L):
    """An element-wise layer, Add most often (the residual form), else Sub, Xor or Or."""
    op = d.pick(["add", "sub", "xor", "or"], p=[0.55, 0.15, 0.15, 0.15])
    return L.Eltwise(op, device=d.device)


def _residual_block(d, L, x, spatial, channels, push):
    """One residual block after `x`; returns (output, spatial, channels)."""
    shape = d.pick(["one", "two", "three", "proj"], p=[0.45, 0.25, 0.15, 0.15])

    def conv(t, filters, kernel=3):
        pad = 1 if kernel == 3 else 0
        return L.Conv2D(filters, kernel, padding=pad, **d.common())(t)

    branch = conv(x, channels)
    if shape in ("two", "three"):
        branch = conv(branch, channels, d.pick([1, 3]))
    operands = [branch, x]
    if shape == "three":
        operands.append(conv(x, channels, 1))
    if shape == "proj":
        operands[1] = conv(x, channels, 1)
    order = list(d.rng.permutation(len(operands)))
    y = _eltwise(d, L)([operands[i] for i in order])
    after = d.pick(["conv", "pool_conv", "add_again", "pool_only", "none"],
                   p=[0.45, 0.25, 0.1, 0.1, 0.1])
    if after == "add_again":  # the Add read twice: by another Add and by a convolution
        y2 = conv(y, channels)
        y = _eltwise(d, L)([y2, y])
    elif after == "pool_only" and min(spatial) >= 2:
        y = L.MaxPool2D(pool_size=2, pool_strides=2, device=d.device)(y)
        spatial = [(s - 2) // 2 + 1 for s in spatial]
    elif after in ("conv", "pool_conv"):
        pool = {}
        if after == "pool_conv" and min(spatial) >= 2:
            pool = {"pooling": d.pick(["max", "avg"]), "pool_size": 2, "pool_strides": 2}
            spatial = [(s - 2) // 2 + 1 for s in spatial]
        channels = d.pick([channels, 8, 16, 24, 32, 48, 64, 96, 128])
        y = L.Conv2D(channels, 3, padding=1, **pool, **d.common())(y)
    return y, spatial, channels


def _build_residual(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78000" if seed % 2 == 0 else "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(RESIDUAL_PUSHES)) if d.chance(0.5) else ""
    size = d.pick([4, 8, 12, 16, 32])
    spatial = [size, size]
    in_channels = d.pick([3, 8, 16, 20, 32])
    channels = d.pick([4, 8, 16, 20, 32, 48, 64], p=[.1, .2, .2, .15, .15, .1, .1])
    if push == "multipass_operands":
        channels = d.pick([72, 100, 128, 200])
    if push == "big_input":
        size = 96 if device == "MAX78000" else 150
        spatial, channels = [size, size], d.pick([8, 16])
    inputs = keras.Input(tuple(spatial) + (in_channels,))
    if push == "input_operand":
        x, channels = inputs, in_channels
    else:
        x = L.Conv2D(channels, 3, padding=1, **d.common())(inputs)
    blocks = d.pick([1, 2, 3])
    if push == "many_layers":
        blocks = 12 if device == "MAX78000" else 45
    for _ in range(blocks):
        x, spatial, channels = _residual_block(d, L, x, spatial, channels, push)
    if push == "kernel_memory":
        x = L.Conv2D(d.pick([400, 512]), 3, padding=1, **d.common())(x)
    wide = d.chance(0.4)
    if int(np.prod(spatial)) * int(x.shape[-1]) <= 1024 and d.chance(0.4):
        x = _dense_head(d, L, keras, x)
    else:
        x = L.Conv2D(d.pick([2, 5, 10]), 1, padding=0, **d.common(wide=wide))(x)
    model = keras.Model(inputs, x, name=f"r{seed}")
    return GeneratedModel(seed, model, device, "residual", push)


def random_residual_model(seed):
    """The generated residual model for `seed`: 1..3 residual blocks of various shapes.

    Blocks combine a convolution's output with its input, with a 1x1 projection, or three
    operands, by an element-wise layer (Add about half the time, else Sub, Xor or Or); the
    result feeds a convolution (with or without pooling, so the operation runs inside it), a
    pool-only layer, a second element-wise layer, or the head. About half are pushed past a limit (layer
    count, kernel memory, data memory, the model input as an operand, multi-pass operands).

    Args:
        seed: an int; even seeds are for the MAX78000, odd ones for the MAX78002.

    Returns:
        A `GeneratedModel` with seeded uniform weights.
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed + 7 * 10**6)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build_residual(seed, rng)
        except (DeviceLimitError, ValueError):
            continue
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable residual model for seed {seed} in {MAX_DRAWS} draws")


CONCAT_PUSHES = ("many_layers", "kernel_memory", "big_input")


def _concat_block(d, L, keras, x, spatial, push):
    """A UNet-like skip after `x`; returns (output, spatial).

    "skip": a -> b [-> b2] -> Concatenate([b, a]) (or [a, b]) -> conv; "unet": a -> down
    (pooled) -> ConvTranspose2D up -> Concatenate([up, a]) -> conv; "three": a -> b -> e ->
    Concatenate of the three. The concatenated layers have one channel count, a multiple of 4:
    64 channels in all at most (side by side on the processors) or one pass each (interleaved),
    what check_model replays of the tool's in_sequences.
    """
    shape = d.pick(["skip", "unet", "three"], p=[0.45, 0.35, 0.2])
    if shape == "unet" and (min(spatial) < 2 or min(spatial) % 2 or max(spatial) > 16):
        shape = "skip"
    inputs = 3 if shape == "three" else 2
    if d.chance(0.3):  # more than 64 channels: one pass per input, interleaved (write_gap)
        channels = d.pick([c for c in (36, 40, 44, 48, 56, 64) if c * inputs > 64 * (inputs - 1)])
    else:  # side by side on the processors
        channels = d.pick([c for c in (4, 8, 12, 16, 20, 24, 28, 32) if c * inputs <= 64])

    def conv(t, filters, **kwargs):
        return L.Conv2D(filters, 3, padding=1, **kwargs, **d.common())(t)

    a = conv(x, channels)
    if shape == "unet":
        down = conv(a, d.pick([8, 16, 32]), pooling="max", pool_size=2, pool_strides=2)
        b = L.ConvTranspose2D(channels, 3, padding=1, **d.common())(down)
        parts = [b, a]
    else:
        b = conv(a, channels)
        if d.chance(0.3):
            b = conv(b, channels)
        parts = [b, a] if d.chance(0.6) else [a, b]
        if shape == "three":
            parts = [conv(b, channels), b, a]
    y = L.Concatenate(device=d.device)(parts)
    pool = {}
    if d.chance(0.3) and min(spatial) >= 2:
        pool = {"pooling": d.pick(["max", "avg"]), "pool_size": 2, "pool_strides": 2}
        spatial = [(s - 2) // 2 + 1 for s in spatial]
    y = conv(y, d.pick([8, 16, 24, 32, 64]), **pool)
    return y, spatial


def _build_concat(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78000" if seed % 2 == 0 else "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(CONCAT_PUSHES)) if d.chance(0.5) else ""
    size = d.pick([4, 8, 12, 16, 32])
    if push == "big_input":
        size = 96 if device == "MAX78000" else 150
    spatial = [size, size]
    inputs = keras.Input(tuple(spatial) + (d.pick([3, 8, 16]),))
    x = inputs
    if push != "big_input" or d.chance(0.5):
        x = L.Conv2D(d.pick([8, 16, 32]), 3, padding=1, **d.common())(inputs)
    blocks = d.pick([1, 2])
    if push == "many_layers":
        blocks = 9 if device == "MAX78000" else 33
    for _ in range(blocks):
        x, spatial = _concat_block(d, L, keras, x, spatial, push)
    if push == "kernel_memory":  # 512 words, then 8 passes of 64..256 kernels
        x = L.Conv2D(d.pick([400, 512]), 3, padding=1, **d.common())(x)
        x = L.Conv2D(d.pick([64, 128, 256]), 3, padding=1, **d.common())(x)
    if int(np.prod(spatial)) * int(x.shape[-1]) <= 1024 and d.chance(0.4):
        x = _dense_head(d, L, keras, x)
    else:
        x = L.Conv2D(d.pick([2, 5, 10]), 1, padding=0, **d.common(wide=d.chance(0.4)))(x)
    model = keras.Model(inputs, x, name=f"k{seed}")
    return GeneratedModel(seed, model, device, "concat", push)


def random_concat_model(seed):
    """The generated channel-concatenation model for `seed`: 1..2 UNet-like skips.

    Each block concatenates a convolution's output with later ones (`_concat_block`) and
    convolves the result (the tool's `in_sequences: [a, b]`). About half are pushed past a
    limit (layer count, kernel memory, data memory).

    Args:
        seed: an int; even seeds are for the MAX78000, odd ones for the MAX78002.

    Returns:
        A `GeneratedModel` with seeded uniform weights.
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed + 11 * 10**6)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build_concat(seed, rng)
        except (DeviceLimitError, ValueError):
            continue
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable concatenation model for seed {seed} in {MAX_DRAWS} draws")


STREAMING_PUSHES = ("no_streaming", "gap", "final_pad0", "fifo_channels")
"""Limits a streaming model is pushed past: a large input that does not stream, a streaming
layer after one that does not, padding 0 in the final streaming layer (refused on the
MAX78000 only), more than one FIFO's 4 input channels."""


def _build_streaming(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78000" if seed % 2 == 0 else "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(STREAMING_PUSHES)) if d.chance(0.4) else ""
    size = d.pick([48, 64, 96, 112, 128, 160] if device == "MAX78002" else [40, 64, 96, 128])
    spatial = [size, size if d.chance(0.7) else d.pick([64, 96])]
    channels = d.pick([5, 8]) if push == "fifo_channels" else d.pick([1, 2, 3, 4])
    inputs = keras.Input(tuple(spatial) + (channels,))
    streams = d.pick([1, 2, 3, 4])
    x = inputs
    for i in range(streams):
        kernel = d.pick([1, 3], p=[0.25, 0.75])
        pad = 0 if kernel == 1 else d.pick([0, 1, 2], p=[0.15, 0.7, 0.15])
        if push == "final_pad0" and i == streams - 1:
            kernel, pad = 3, 0
        pool = {}
        if i > 0 or d.chance(0.5):
            pool = {"pooling": d.pick(["max", "avg"]), "pool_size": d.pick([2, 3]),
                    "pool_strides": d.pick([1, 2, 2, 3])}
        pooled = _pooled(spatial, pool)
        stream = push != "no_streaming" and not (push == "gap" and i == 0 and streams > 1)
        x = L.Conv2D(d.pick([4, 8, 12, 16]), kernel, padding=pad, streaming=stream,
                     **pool, **d.common())(x)
        spatial = [s + 2 * pad - kernel + 1 for s in pooled]
    while max(spatial) > 16:
        pool = {"pooling": "max", "pool_size": 2, "pool_strides": 2}
        x = L.Conv2D(d.pick([8, 16, 32]), d.pick([1, 3]), padding=0, **pool, **d.common())(x)
        spatial = _pooled(spatial, pool)
        if int(x.shape[-3]) != spatial[0]:
            spatial = [int(x.shape[-3]), int(x.shape[-2])]
    if int(np.prod(spatial)) * int(x.shape[-1]) <= 1024 and d.chance(0.5):
        x = _dense_head(d, L, keras, x)
    else:
        x = L.Conv2D(d.pick([2, 5, 10]), 1, padding=0, **d.common(wide=d.chance(0.4)))(x)
    model = keras.Model(inputs, x, name=f"s{seed}")
    return GeneratedModel(seed, model, device, "streaming", push)


def random_streaming_model(seed):
    """The generated streaming model for `seed`: 1..4 streaming Conv2D layers on an input of
    up to 128x128 (160x160 on the MAX78002), then pooling convolutions and a head.

    About 40 % are pushed past a streaming rule (`STREAMING_PUSHES`).

    Args:
        seed: an int; even seeds are for the MAX78000, odd ones for the MAX78002.

    Returns:
        A `GeneratedModel` with seeded uniform weights.
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed + 13 * 10**6)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build_streaming(seed, rng)
        except (DeviceLimitError, ValueError):
            continue
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable streaming model for seed {seed} in {MAX_DRAWS} draws")


MULTI_OUTPUT_PUSHES = ("kernel_memory", "big_input", "many_layers")


def _build_multi_output(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78000" if seed % 2 == 0 else "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(MULTI_OUTPUT_PUSHES)) if d.chance(0.4) else ""
    size = d.pick([8, 12, 16, 24, 32])
    if push == "big_input":
        size = 96 if device == "MAX78000" else 150
    inputs = keras.Input((size, size, d.pick([1, 3, 4, 8, 16])))
    x, taps = inputs, []
    depth = d.pick([2, 3, 4])
    if push == "many_layers":
        depth = 30 if device == "MAX78000" else 126
    for i in range(depth):
        pool = {}
        if d.chance(0.4) and min(x.shape[1:3]) >= 4:
            pool = {"pooling": d.pick(["max", "avg"]), "pool_size": 2, "pool_strides": 2}
        filters = d.pick([8, 16, 32, 64]) if push != "many_layers" else 4
        kernel = d.pick([1, 3], p=[0.25, 0.75])
        x = L.Conv2D(filters, kernel, padding=kernel // 2, **pool, **d.common())(x)
        taps.append(x)
    heads = []
    for tap in [taps[-1]] + [t for t in taps[:-1] if d.chance(0.5)][:2]:
        filters = d.pick([2, 4, 8, 16, 24])
        if push == "kernel_memory" and not heads:
            filters = d.pick([400, 512])
        kernel = d.pick([1, 3], p=[0.3, 0.7])
        heads.append(L.Conv2D(filters, kernel, padding=kernel // 2, **d.common())(tap))
    if len(heads) < 2 or d.chance(0.3):
        heads.append(taps[-1])  # an inner layer that is an output and feeds a head
    order = list(rng.permutation(len(heads)))
    model = keras.Model(inputs, [heads[i] for i in order], name=f"o{seed}")
    return GeneratedModel(seed, model, device, "outputs", push)


def random_multi_output_model(seed):
    """The generated model with several outputs for `seed`: a Conv2D backbone and 2..4 outputs
    (heads on several backbone layers, sometimes a backbone layer itself), in a random order.

    About 40 % are pushed past a limit (kernel memory, data memory, layer count).

    Args:
        seed: an int; even seeds are for the MAX78000, odd ones for the MAX78002.

    Returns:
        A `GeneratedModel` with seeded uniform weights.
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed + 17 * 10**6)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build_multi_output(seed, rng)
        except (DeviceLimitError, ValueError):
            continue
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable multi-output model for seed {seed} in {MAX_DRAWS} draws")


DILATED_PUSHES = ("kernel_memory", "padded_conv1d_channels", "many_layers", "bias_outputs")
"""Limits a dilated Conv1D model is pushed past: long stretched kernels for many outputs
(kernel memory), padding with more than 64 input channels (MAX78002), more layers than the
device has, more biased outputs than the bias memory holds (MAX78000)."""


def _dilated_conv1d(d, L, x, length, push, first, last):
    """One random Conv1D, dilated two times in three; returns (output, length, wide)."""
    if d.chance(0.67):
        kernel = d.pick([2, 3, 4, 5], p=[0.35, 0.4, 0.15, 0.1])
        # The stretched kernel spans (k - 1) * dilation + 1 <= 9 steps.
        dilation = d.pick(list(range(2, 8 // (kernel - 1) + 1)))
    else:
        kernel, dilation = d.pick(list(range(1, 10))), 1
    pool = d.pool([length], 1)
    pooled = _pooled([length], pool)[0]
    pad = d.pick(list(range(0, min(2, kernel - 1) + 1)))
    if push == "padded_conv1d_channels" and first:
        kernel, pad = max(kernel, 2), max(pad, 1)
    filters = d.pick([4, 8, 16, 32, 64, 100])
    if push == "kernel_memory" and first:
        filters = d.pick([400, 512, 1000])
        kernel, dilation = d.pick([(2, 8), (3, 4), (5, 2), (9, 1)])
        pad = min(pad, kernel - 1)
    if push == "many_layers":  # the length stays: 2 taps 2 apart, padding 1
        filters, kernel, dilation, pad, pool, pooled = 4, 2, 2, 1, {}, length
    span = (kernel - 1) * dilation + 1
    kwargs = d.common(wide=last and d.chance(0.3))
    if push == "bias_outputs" and first:
        filters, kwargs["use_bias"] = d.pick([520, 600]), True
    if pooled + 2 * pad < span:
        raise ValueError("too short for the dilated kernel: draw again")
    x = L.Conv1D(filters, kernel, padding=pad, dilation=dilation, **pool, **kwargs)(x)
    return x, pooled + 2 * pad - span + 1, bool(kwargs.get("wide"))


def _build_dilated(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78000" if seed % 2 == 0 else "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(DILATED_PUSHES)) if d.chance(0.4) else ""
    length = d.pick([24, 32, 48, 64, 96, 128])
    channels = d.pick([1, 2, 4, 8, 16, 32, 64, 100, 128])
    if push == "padded_conv1d_channels":
        channels = d.pick([72, 100, 128])
    if push == "kernel_memory":
        channels = d.pick([64, 128])
    inputs = keras.Input((length, channels))
    count = d.pick([1, 2, 3, 4])
    if push == "many_layers":
        count = d.pick([33, 36]) if device == "MAX78000" else d.pick([129, 131])
    x, wide = inputs, False
    for i in range(count):
        x, length, wide = _dilated_conv1d(d, L, x, length, push, i == 0, i == count - 1)
    if not wide and length * int(x.shape[-1]) <= 1024 and d.chance(0.5):
        x = _dense_head(d, L, keras, x)
    model = keras.Model(inputs, x, name=f"d{seed}")
    return GeneratedModel(seed, model, device, "dilated_conv1d", push)


def random_dilated_model(seed):
    """The generated dilated-Conv1D model for `seed`: 1..4 Conv1D layers, two in three of
    them dilated (kernel 2..9, `(k - 1) * dilation + 1 <= 9`), fused pooling and padding
    drawn as in the other families, sometimes a dense head.

    About 40 % are pushed past a limit (`DILATED_PUSHES`).

    Args:
        seed: an int; even seeds are for the MAX78000, odd ones for the MAX78002.

    Returns:
        A `GeneratedModel` with seeded uniform weights.
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed + 19 * 10**6)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build_dilated(seed, rng)
        except (DeviceLimitError, ValueError):
            continue
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable dilated model for seed {seed} in {MAX_DRAWS} draws")


POOL_DILATED_PUSHES = ("kernel_memory", "many_layers", "big_input", "pool_only_channels")
"""Limits a dilated-pooling model (MAX78002) is pushed past."""


def _dilated_pool_args(d, spatial):
    """Fused pooling with `pool_dilation` (two times in three), fitting `spatial` (or {})."""
    size = [2, d.pick([1, 2], p=[0.2, 0.8])]
    dilation = [d.pick([2, 3, 4, 7, 15], p=[0.35, 0.25, 0.2, 0.1, 0.1]) if k == 2 else 1
                for k in size]
    if d.chance(0.33):
        dilation = [1, 1]
    elif d.chance(0.5):
        dilation[1] = dilation[0] if size[1] == 2 else 1
    stride = d.pick([1, 2, 3], p=[0.4, 0.5, 0.1])
    if any(s < (k - 1) * g + 1 for s, k, g in zip(spatial, size, dilation)):
        return {}
    return {"pooling": d.pick(["max", "avg"]), "pool_size": tuple(size),
            "pool_strides": stride, "pool_dilation": tuple(dilation)}


def _dilated_pooled(spatial, pool):
    if not pool:
        return list(spatial)
    return [(s - (k - 1) * g - 1) // pool["pool_strides"] + 1
            for s, k, g in zip(spatial, pool["pool_size"], pool["pool_dilation"])]


def _build_pool_dilated(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(POOL_DILATED_PUSHES)) if d.chance(0.35) else ""
    size = d.pick([12, 16, 20, 24, 32, 40])
    if push == "big_input":
        size = 150
    spatial = [size, size if d.chance(0.7) else d.pick([12, 16, 24])]
    channels = d.pick([1, 3, 4, 8, 16, 32, 64, 100])
    inputs = keras.Input(tuple(spatial) + (channels,))
    x = inputs
    count = d.pick([1, 2, 3, 4])
    if push == "many_layers":
        count = d.pick([129, 131])
    elif push == "big_input":
        count = 1
    pushed_at = d.pick(list(range(count)))
    wide = False
    for i in range(count):
        if push == "many_layers":
            x = L.Conv2D(4, 1, padding=0, **d.common())(x)
            continue
        if push == "pool_only_channels" and i == pushed_at:
            x = L.Conv2D(d.pick([72, 100, 128]), 1, padding=0, device=device)(x)
        if (d.chance(0.2) or push == "pool_only_channels" and i == pushed_at) \
                and i < count - 1:
            pool = _dilated_pool_args(d, spatial)
            if pool:
                cls = L.MaxPool2D if pool.pop("pooling") == "max" else L.AvgPool2D
                x = cls(pool["pool_size"], pool["pool_strides"],
                        pool_dilation=pool["pool_dilation"], device=device)(x)
                spatial = [int(s) for s in x.shape[1:3]]
                continue
        pool = _dilated_pool_args(d, spatial) if d.chance(0.7) else {}
        pooled = _dilated_pooled(spatial, pool)
        kernel = d.pick([1, 3], p=[0.3, 0.7])
        pad = 0 if kernel == 1 else d.pick([0, 1, 2], p=[0.2, 0.7, 0.1])
        if kernel == 3 and pad == 0 and min(pooled) < 3:
            pad = 1
        filters = d.pick([4, 8, 16, 32, 64, 100])
        if push == "kernel_memory" and i == pushed_at:
            filters, kernel, pad = d.pick([900, 1000]), 3, 1
        if push == "big_input":
            filters = d.pick([4, 8])
        wide = i == count - 1 and d.chance(0.3)
        x = L.Conv2D(filters, kernel, padding=pad, **pool, **d.common(wide=wide))(x)
        spatial = [int(s) for s in x.shape[1:3]]
    if not wide and int(np.prod(spatial)) <= 64 and d.chance(0.5):
        x = _dense_head(d, L, keras, x)
    model = keras.Model(inputs, x, name=f"p{seed}")
    return GeneratedModel(seed, model, device, "pool_dilation", push)


def random_pool_dilated_model(seed):
    """The generated dilated-pooling model for `seed` (MAX78002, the device that has it):
    1..4 Conv2D layers and pool-only layers whose pooling is dilated two times in three
    (pool size 2 in each dilated dimension, dilation 2..15), sometimes a dense head.

    About 35 % are pushed past a limit (`POOL_DILATED_PUSHES`).

    Args:
        seed: an int.

    Returns:
        A `GeneratedModel` with seeded uniform weights.
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed + 23 * 10**6)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build_pool_dilated(seed, rng)
        except (DeviceLimitError, ValueError):
            continue
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable dilated-pooling model for seed {seed} in {MAX_DRAWS} "
                       f"draws")


DEPTHWISE_PUSHES = ("kernel_memory", "many_layers", "big_input")
"""Limits a depthwise model (MAX78002) is pushed past."""


def _build_depthwise(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(DEPTHWISE_PUSHES)) if d.chance(0.3) else ""
    size = d.pick([8, 12, 16, 24, 32])
    if push == "big_input":
        size = 150
    channels = d.pick([1, 3, 4, 8, 16, 32])
    inputs = keras.Input((size, size, channels))
    x, spatial = inputs, [size, size]
    blocks = d.pick([1, 2, 3])
    if push == "many_layers":
        blocks = d.pick([44, 45])
    pushed_at = d.pick(list(range(blocks)))
    wide = False
    for i in range(blocks):
        width = d.pick([4, 8, 12, 16, 24, 32, 48, 64, 72, 96, 128, 256],
                       p=[.06, .1, .06, .12, .08, .14, .08, .12, .05, .07, .07, .05])
        if push == "many_layers":
            width = 4
        if push == "kernel_memory" and i == pushed_at:
            width = d.pick([900, 1000])
        if push == "big_input":
            width = d.pick([4, 8])
        if channels != width or d.chance(0.6):  # pointwise expansion
            x = L.Conv2D(width, 1, padding=0, **d.common())(x)
        pool = d.pool(spatial, 2)
        pooled = _pooled(spatial, pool)
        kernel = d.pick([1, 3], p=[0.2, 0.8])
        pad = 0 if kernel == 1 else d.pick([0, 1, 2], p=[0.15, 0.75, 0.1])
        if kernel == 3 and pad == 0 and min(pooled) < 3:
            pad = 1
        x = L.Conv2D(width, kernel, padding=pad, groups=width, **pool, **d.common())(x)
        spatial = [s + 2 * pad - kernel + 1 for s in pooled]
        channels = width
        if d.chance(0.5) or i == blocks - 1:  # pointwise projection
            channels = d.pick([4, 8, 16, 24, 32, 64])
            wide = i == blocks - 1 and d.chance(0.3)
            x = L.Conv2D(channels, 1, padding=0, **d.common(wide=wide))(x)
    if not wide and int(np.prod(spatial)) * channels <= 1024 and d.chance(0.4):
        x = _dense_head(d, L, keras, x)
    model = keras.Model(inputs, x, name=f"w{seed}")
    return GeneratedModel(seed, model, device, "depthwise", push)


def random_depthwise_model(seed):
    """The generated depthwise-separable model for `seed` (MAX78002, the device that has it):
    1..3 MobileNet-style blocks (pointwise expansion, a depthwise 1x1 or 3x3 `Conv2D(groups=
    width)` with fused pooling sometimes, a pointwise projection), widths up to 256 (several
    passes), any weight bits, sometimes a dense head.

    About 30 % are pushed past a limit (`DEPTHWISE_PUSHES`).

    Args:
        seed: an int.

    Returns:
        A `GeneratedModel` with seeded uniform weights.
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed + 29 * 10**6)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build_depthwise(seed, rng)
        except (DeviceLimitError, ValueError):
            continue
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable depthwise model for seed {seed} in {MAX_DRAWS} draws")


BINARY_PUSHES = ("mixed_1bit", "kernel_memory", "many_layers")
"""Limits a binary-weight model (MAX78002) is pushed past: binary and 1-bit layers in one
network (the tool refuses), kernel memory, the layer count."""


def _build_binary(seed, rng):
    import keras

    from ai8x_nb import layers as L

    device = "MAX78002"
    d = _Draw(rng, device)
    push = d.pick(list(BINARY_PUSHES)) if d.chance(0.35) else ""
    size = d.pick([8, 12, 16, 24, 32])
    spatial = [size, size]
    inputs = keras.Input((size, size, d.pick([1, 3, 4, 8, 16, 64, 100])))
    x = inputs
    count = d.pick([1, 2, 3, 4])
    if push == "many_layers":
        count = d.pick([129, 131])
    pushed_at = d.pick(list(range(count)))
    wide = False

    def common(last=False):
        kwargs = d.common(wide=last and d.chance(0.3))
        kwargs["weight_bits"] = d.pick(["binary", 8, 4, 2], p=[0.6, 0.2, 0.1, 0.1])
        return kwargs

    for i in range(count):
        pool = d.pool(spatial, 2) if push != "many_layers" else {}
        pooled = _pooled(spatial, pool)
        kernel = d.pick([1, 3], p=[0.3, 0.7]) if push != "many_layers" else 1
        pad = 0 if kernel == 1 else d.pick([0, 1, 2], p=[0.2, 0.7, 0.1])
        if kernel == 3 and pad == 0 and min(pooled) < 3:
            pad = 1
        filters = d.pick([4, 8, 16, 32, 64, 100, 128]) if push != "many_layers" else 4
        kwargs = common(last=i == count - 1)
        if push == "kernel_memory" and i == pushed_at:
            filters, kernel, pad, kwargs["weight_bits"] = d.pick([1000, 1024]), 3, 1, 8
        if push == "mixed_1bit" and i == pushed_at:
            kwargs["weight_bits"] = 1
        if push == "mixed_1bit" and count == 1:
            raise ValueError("mixing needs two layers: draw again")
        wide = bool(kwargs.get("wide"))
        x = L.Conv2D(filters, kernel, padding=pad, **pool, **kwargs)(x)
        spatial = [s + 2 * pad - kernel + 1 for s in pooled]
    if not wide and int(np.prod(spatial)) * int(x.shape[-1]) <= 1024 and d.chance(0.4):
        x = keras.layers.Flatten()(x)
        x = L.Dense(d.pick([2, 5, 10]), **common(last=True))(x)
    model = keras.Model(inputs, x, name=f"b{seed}")
    return GeneratedModel(seed, model, device, "binary", push)


def random_binary_model(seed):
    """The generated binary-weight model for `seed` (MAX78002, the device that has +-1
    weights): 1..4 Conv2D layers, most with `weight_bits="binary"` beside 8/4/2-bit ones,
    fused pooling, sometimes a dense head.

    About 35 % are pushed past a limit (`BINARY_PUSHES`).

    Args:
        seed: an int.

    Returns:
        A `GeneratedModel` with seeded uniform weights.
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed + 31 * 10**6)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build_binary(seed, rng)
        except (DeviceLimitError, ValueError):
            continue
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable binary model for seed {seed} in {MAX_DRAWS} draws")


def random_hardware_model(seed):
    """The generated model for `seed` (redrawn until its layers accept their arguments).

    Args:
        seed: an int; the same seed gives the same model. Even seeds are for the MAX78000,
            odd ones for the MAX78002.

    Returns:
        A `GeneratedModel` with seeded uniform weights (`set_deterministic_weights`).
    """
    from ai8x_nb.errors import DeviceLimitError

    rng = np.random.default_rng(seed)
    for _ in range(MAX_DRAWS):
        try:
            generated = _build(seed, rng)
        except (DeviceLimitError, ValueError):
            continue  # a layer refused its arguments at construction: draw again
        _set_weights(generated.model, seed)
        return generated
    raise RuntimeError(f"no buildable model for seed {seed} in {MAX_DRAWS} draws")


def _set_weights(model, seed, scale=0.4):
    rng = np.random.default_rng(seed + 10**6)
    for var in model.weights:
        var.assign(rng.uniform(-scale, scale, size=tuple(var.shape)).astype("float32"))


@pytest.fixture(scope="session")
def hardware_model_generator():
    """`random_hardware_model(seed) -> GeneratedModel`, the seeded model generator."""
    return random_hardware_model


@pytest.fixture(scope="session")
def residual_model_generator():
    """`random_residual_model(seed) -> GeneratedModel`, the seeded residual-model generator."""
    return random_residual_model


@pytest.fixture(scope="session")
def concat_model_generator():
    """`random_concat_model(seed) -> GeneratedModel`, the seeded concatenation-model generator."""
    return random_concat_model


@pytest.fixture(scope="session")
def streaming_model_generator():
    """`random_streaming_model(seed) -> GeneratedModel`, the seeded streaming-model generator."""
    return random_streaming_model


@pytest.fixture(scope="session")
def dilated_model_generator():
    """`random_dilated_model(seed) -> GeneratedModel`, dilated Conv1D models."""
    return random_dilated_model


@pytest.fixture(scope="session")
def pool_dilated_model_generator():
    """`random_pool_dilated_model(seed) -> GeneratedModel`, dilated pooling (MAX78002)."""
    return random_pool_dilated_model


@pytest.fixture(scope="session")
def depthwise_model_generator():
    """`random_depthwise_model(seed) -> GeneratedModel`, depthwise-separable (MAX78002)."""
    return random_depthwise_model


@pytest.fixture(scope="session")
def binary_model_generator():
    """`random_binary_model(seed) -> GeneratedModel`, +-1 weights (MAX78002)."""
    return random_binary_model


@pytest.fixture(scope="session")
def multi_output_model_generator():
    """`random_multi_output_model(seed) -> GeneratedModel`, models with several outputs."""
    return random_multi_output_model


# --------------------------------------------------------------- the synthesis tool, warm
_SERVER = r'''
import json, os, signal, socket, sys, traceback
sys.path.insert(0, os.getcwd())
import izer.izer  # the tool's heavy imports (numpy, torch, ...), once
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(16)
print("ready", flush=True)
while True:
    conn, _ = server.accept()
    if os.fork():
        conn.close()
        continue
    server.close()
    job = json.loads(conn.makefile("rb").readline())
    sys.stdout.flush(); sys.stderr.flush()
    os.dup2(conn.fileno(), 1); os.dup2(conn.fileno(), 2)
    os.chdir(job["cwd"])
    sys.argv = job["argv"]
    code = 0
    try:
        izer.izer.main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush(); sys.stderr.flush()
    os.write(1, ("\n\0EXIT %d\n" % code).encode())
    os._exit(0)
'''

_CLIENT = r'''#!{python}
import json, os, socket, sys
conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
conn.connect({path!r})
conn.sendall((json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd()}}) + "\n").encode())
code = 1
for line in conn.makefile("rb"):
    if line.startswith(b"\0EXIT "):
        code = int(line.split()[1])
    else:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
sys.exit(code)
'''


@pytest.fixture(scope="session")
def warm_synthesis_python(tmp_path_factory):
    """An `ai8xize.py` interpreter for `synthesize(..., python=...)` that starts in ~50 ms.

    The tool spends most of a run (about 1.7 of 2.5 s) importing torch and numpy. This starts
    one server in the tool's own environment that imports them once and forks a fresh copy of
    itself for every run; the returned script passes its arguments, working directory, output
    and exit status through, so `synthesize` runs the unmodified tool as it always does.
    Returns None (use the real interpreter) when the tool is not configured or the server does
    not start.
    """
    import os
    import subprocess
    import sys

    folder, python = os.environ.get("AI8X_SYNTHESIS_DIR"), os.environ.get(
        "AI8X_SYNTHESIS_PYTHON")
    if not (folder and python) or not hasattr(os, "fork"):
        yield None
        return
    work = tmp_path_factory.mktemp("warm_tool")
    path = str(work / "tool.sock")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    server = subprocess.Popen([python, "-c", _SERVER, path], cwd=folder, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ready = server.stdout.readline().strip() == "ready"
        client = work / "ai8xize_python"
        client.write_text(_CLIENT.format(python=sys.executable, path=path))
        client.chmod(0o755)
        yield str(client) if ready else None
    finally:
        server.kill()
        server.wait()
