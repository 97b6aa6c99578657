"""Model specs: a model as a JSON-able list of dicts, one per layer.

A spec is what the layer editor edits and what a notebook's `parameters` cell holds, so a
papermill run reproduces an edited model. Each row has a `type` and that type's fields:

| type | fields (defaults) |
|---|---|
| conv2d, conv1d, convtranspose2d | filters, kernel_size (3 / 9 for conv1d), padding (1 / 0 for conv1d), pooling (None), pool_size, pool_strides, activation ("relu"), wide (False), use_bias (True) |
| dense | units, activation (None), wide (False), use_bias (True) |
| maxpool, avgpool | pool_size (2), pool_strides (= pool_size) |
| flatten | - |
| dropout | rate (0.2) |
| reshape | target_shape |

Optional conv/dense fields, written only when set: `batch_norm` ("affine"/"noaffine"),
`weight_bits` (4/2/1, or "binary": +-1 weights on the MAX78002), `l2` (kernel L2 regularisation factor); conv1d only: `dilation`
(2.., both devices; the kernel spans `(kernel_size - 1) * dilation + 1 <= 9` steps);
conv2d, convtranspose2d and pool rows: `pool_dilation` (MAX78002, 2D pooling of size 2 in
each dilated dimension, 2..15); conv2d only: `groups` (MAX78002 depthwise: groups == filters
== the row's input channels). Pool rows become 1D or 2D
pooling from the rank of their input. Layers are named by `layer_names` (conv1, conv2, ...,
fc). The seed models' specs live in `ai8x_nb.models` (`seed_spec(name)`).

Example:

>>> spec = [{"type": "conv2d", "filters": 8, "pooling": "max", "pool_size": 2},
...         {"type": "flatten"}, {"type": "dense", "units": 10, "wide": True}]
>>> model = spec_to_model(spec, (28, 28, 1), 10)  # doctest: +SKIP
>>> model_to_spec(model) == normalize_spec(spec)  # doctest: +SKIP
True
"""

import collections
import json
import math
import numbers
import types

from ai8x_nb.errors import Ai8xNbError

__all__ = [
    "SpecError",
    "LAYER_TYPES",
    "default_row",
    "normalize_row",
    "normalize_spec",
    "spec_to_model",
    "python_literal",
    "model_to_spec",
    "layer_names",
    "validate_spec",
    "spec_to_python",
]

CONV_TYPES = ("conv2d", "conv1d", "convtranspose2d")
POOL_TYPES = ("maxpool", "avgpool")
LAYER_TYPES = CONV_TYPES + ("dense",) + POOL_TYPES + ("flatten", "dropout", "reshape")
OPTIONAL_KEYS = ("batch_norm", "weight_bits", "l2")
CONV1D_KEYS = ("dilation",)
"""Optional fields of conv1d rows only (the tool dilates Conv1d only)."""
CONV2D_KEYS = ("groups",)
"""Optional fields of conv2d rows only (depthwise convolution, MAX78002)."""
POOL_KEYS = ("pool_dilation",)
"""Optional fields of rows that pool in 2D (conv2d, convtranspose2d, maxpool, avgpool)."""
_NEUTRAL = {"weight_bits": 8, "dilation": 1, "pool_dilation": 1, "groups": 1}
"""Optional fields dropped from the canonical row at these values."""


class SpecError(Ai8xNbError, ValueError):
    """A model spec row that is malformed or that the device cannot run.

    Attributes:
        row: index of the offending row (None for spec-level problems).
    """

    def __init__(self, message, row=None):
        super().__init__(message)
        self.row = row


# ----------------------------------------------------------------- rows
def default_row(layer_type):
    """Return a new row of `layer_type` with every field at its default.

    Args:
        layer_type: one of `LAYER_TYPES`.

    Returns:
        A dict.

    Raises:
        SpecError: unknown type.
    """
    if layer_type in CONV_TYPES:
        one_d = layer_type == "conv1d"
        return {"type": layer_type, "filters": 16, "kernel_size": 9 if one_d else 3,
                "padding": 0 if one_d else 1, "pooling": None, "pool_size": None,
                "pool_strides": None, "activation": "relu", "wide": False, "use_bias": True}
    if layer_type == "dense":
        return {"type": "dense", "units": 10, "activation": None, "wide": False,
                "use_bias": True}
    if layer_type in POOL_TYPES:
        return {"type": layer_type, "pool_size": 2, "pool_strides": 2}
    if layer_type == "flatten":
        return {"type": "flatten"}
    if layer_type == "dropout":
        return {"type": "dropout", "rate": 0.2}
    if layer_type == "reshape":
        return {"type": "reshape", "target_shape": [-1]}
    raise SpecError(f"Unknown layer type {layer_type!r}; use one of {', '.join(LAYER_TYPES)}.")


def _compact(value):
    """(2, 2) -> 2, (2, 3) -> [2, 3]: the JSON form of a pool size."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        values = [int(v) for v in value]
        return values[0] if len(set(values)) == 1 else values
    return int(value)


def normalize_row(row, index=None):
    """Return `row` with defaults filled in and values in canonical form.

    Args:
        row: a dict with at least `type`.
        index: the row's position, used in error messages.

    Returns:
        A new dict (the canonical form `model_to_spec` produces).

    Raises:
        SpecError: not a dict, unknown type or unknown field.
    """
    where = f"row {index}" if index is not None else "row"
    if not isinstance(row, dict) or "type" not in row:
        raise SpecError(f"Model spec {where}: expected a dict with a 'type' key, got {row!r}.",
                        index)
    layer_type = str(row["type"]).lower()
    if layer_type not in LAYER_TYPES:
        raise SpecError(f"Model spec {where}: unknown type {row['type']!r}; use one of "
                        f"{', '.join(LAYER_TYPES)}.", index)
    out = default_row(layer_type)
    allowed = set(out) | (set(OPTIONAL_KEYS) if layer_type in CONV_TYPES + ("dense",) else set())
    if layer_type == "conv1d":
        allowed |= set(CONV1D_KEYS)
    elif layer_type in CONV_TYPES + POOL_TYPES:
        allowed |= set(POOL_KEYS)
    if layer_type == "conv2d":
        allowed |= set(CONV2D_KEYS)
    unknown = sorted(set(row) - allowed)
    if unknown:
        raise SpecError(f"Model spec {where} ({layer_type}): unknown field(s) "
                        f"{', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}.", index)
    out.update(row)
    out["type"] = layer_type
    _check_values(out, where, index)
    for key in ("activation", "pooling", "batch_norm"):
        if isinstance(out.get(key), str):
            out[key] = None if out[key].lower() in ("none", "") else out[key].lower()
    if layer_type in CONV_TYPES:
        out["kernel_size"] = _compact(out["kernel_size"])
        if out["pooling"] is None:
            out["pool_size"] = out["pool_strides"] = None
        else:
            out["pool_size"] = _compact(out["pool_size"] if out["pool_size"] is not None else 2)
            strides = out["pool_strides"]
            out["pool_strides"] = _compact(strides if strides is not None else out["pool_size"])
    if out.get("pool_dilation") is not None:
        out["pool_dilation"] = _compact(out["pool_dilation"])
    if layer_type in POOL_TYPES:
        out["pool_size"] = _compact(out["pool_size"])
        strides = out["pool_strides"]
        out["pool_strides"] = _compact(strides if strides is not None else out["pool_size"])
    if layer_type == "reshape":
        out["target_shape"] = [int(v) for v in out["target_shape"]]
    for key in OPTIONAL_KEYS + CONV1D_KEYS + CONV2D_KEYS + POOL_KEYS:
        if key in out and out[key] in (None, _NEUTRAL.get(key), 0, 0.0):
            del out[key]
    return out


_WHOLE = {"filters": None, "units": 1, "kernel_size": 1, "padding": 0, "pool_size": 1,
          "pool_strides": 1, "weight_bits": 1, "dilation": 1, "pool_dilation": 1, "groups": 1}
"""Fields that are whole numbers (or lists of them), with their smallest value (None: the
layer checks the range, with the device's limits and the fix: "Use at least 1 channel")."""


def _check_values(row, where, index):
    """Refuse values of the wrong kind before any layer is built: a number written as text, a
    fraction where a count goes (2.5 filters), NaN or infinity."""
    def bad(key, value, expected):
        raise SpecError(f"Model spec {where} ({row['type']}): {key}={value!r} is invalid; "
                        f"expected {expected}.", index)

    def whole(value, low):
        return (isinstance(value, numbers.Integral) and not isinstance(value, bool)
                and (low is None or value >= low))

    for key, low in _WHOLE.items():
        value = row.get(key)
        if value is None or key == "weight_bits" and value in ("binary", "bin"):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        if not values or not all(whole(v, low) for v in values):
            bad(key, value, ("an int" if low is None else f"an int >= {low}")
                + (" (or a list of them)" if key in ("kernel_size", "pool_size", "pool_strides",
                                                    "pool_dilation")
                   else ""))
    if row["type"] == "reshape":
        shape = row.get("target_shape")
        if not isinstance(shape, (list, tuple)) or not shape or not all(
                whole(v, 1) or v == -1 for v in shape) or list(shape).count(-1) > 1:
            bad("target_shape", shape, "a list of ints >= 1, at most one of them -1")
    for key in ("rate", "l2"):
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                  or not math.isfinite(value) or value < 0
                                  or (key == "rate" and value >= 1)):
            bad(key, value, "a finite number >= 0" + (" and < 1" if key == "rate" else ""))


def normalize_spec(spec):
    """Return the canonical form of a whole spec (a new list).

    Raises:
        SpecError: not a list, or a malformed row (the message names its index).
    """
    if not isinstance(spec, (list, tuple)):
        raise SpecError(f"A model spec is a list of dicts, got {type(spec).__name__}.")
    return [normalize_row(row, i) for i, row in enumerate(spec)]


SPEC_FILE_SUFFIX = ".spec.json"
"""Suffix of a saved model spec (`LayerEditor.save`, the notebooks' `model_spec` parameter)."""


def save_spec(spec, path):
    """Write a spec to a JSON file (atomically); returns the `Path`.

    Raises:
        SpecError: a malformed spec.
    """
    import json
    from pathlib import Path

    from ai8x_nb import _atomic

    text = json.dumps(normalize_spec(spec), indent=1) + "\n"
    return _atomic.write_bytes(Path(path), text.encode())


def load_spec(path):
    """Read a spec written by `save_spec` (or by hand: a JSON list of layer dicts).

    Raises:
        SpecError: the file is missing, not JSON, or not a valid spec; the message names it.
    """
    import json
    from pathlib import Path

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except OSError as err:
        raise SpecError(f"Cannot read the model spec file {str(path)!r}: {err.strerror or err}. "
                        f"Save one with the layer editor's 'Save spec' button, or pass the spec "
                        f"as a list.") from err
    except ValueError as err:
        raise SpecError(f"The model spec file {str(path)!r} is not valid JSON ({err}). Save it "
                        f"again with the layer editor.") from err
    try:
        return normalize_spec(data)
    except SpecError as err:
        raise SpecError(f"The model spec file {str(path)!r}: {err}") from err


def _no_constant(name):
    raise ValueError(f"{name} is not a number a spec can hold")


def resolve_spec(spec):
    """A spec given as a list, or as the path of a spec file; returns the canonical list."""
    import os

    if isinstance(spec, (str, os.PathLike)):
        return load_spec(spec)
    return normalize_spec(spec)


# --------------------------------------------------------------- layers
_NAME_STEMS = types.MappingProxyType({
    "conv2d": "conv", "conv1d": "conv", "convtranspose2d": "conv", "dense": "fc",
    "maxpool": "pool", "avgpool": "pool", "flatten": "flatten", "dropout": "dropout",
    "reshape": "reshape"})


def layer_names(spec):
    """Name each row's Keras layer by the one rule of seed models, notebooks and the editor.

    QAT policy overrides name layers by it. A row is named after its kind: `conv` (conv2d,
    conv1d, convtranspose2d), `fc` (dense), `pool`, `flatten`, `dropout`, `reshape`; a kind
    that occurs more than once is numbered from 1 in spec order.

    Args:
        spec: list of row dicts (canonical or not; a malformed row is named `layer`).

    Returns:
        A list of names, one per row.

    Example:

    >>> layer_names([{"type": "conv2d"}, {"type": "conv1d"}, {"type": "flatten"},
    ...              {"type": "dense"}])
    ['conv1', 'conv2', 'flatten', 'fc']
    """
    stems = [_NAME_STEMS.get(str(row.get("type", "")).lower(), "layer")
             if isinstance(row, dict) else "layer" for row in spec]
    total = collections.Counter(stems)
    seen = collections.Counter()
    names = []
    for stem in stems:
        seen[stem] += 1
        names.append(stem if total[stem] == 1 else f"{stem}{seen[stem]}")
    return names


def _make_layer(row, name, rank, device):
    """Build the Keras layer `name` of one canonical row; `rank`: spatial rank of its input."""
    import keras

    from ai8x_nb import layers

    kind = row["type"]
    if kind in CONV_TYPES or kind == "dense":
        kwargs = {"activation": row["activation"], "wide": row["wide"],
                  "use_bias": row["use_bias"], "device": device, "name": name}
        for key in ("batch_norm", "weight_bits") + CONV1D_KEYS + CONV2D_KEYS:
            if key in row:
                kwargs[key] = row[key]
        if "l2" in row:
            kwargs["kernel_regularizer"] = keras.regularizers.L2(row["l2"])
        if kind == "dense":
            return layers.Dense(row["units"], **kwargs)
        if row["pooling"] is not None:
            kwargs.update(pooling=row["pooling"], pool_size=row["pool_size"],
                          pool_strides=row["pool_strides"])
        if "pool_dilation" in row:
            kwargs["pool_dilation"] = row["pool_dilation"]
        cls = {"conv2d": layers.Conv2D, "conv1d": layers.Conv1D,
               "convtranspose2d": layers.ConvTranspose2D}[kind]
        return cls(row["filters"], kernel_size=row["kernel_size"], padding=row["padding"],
                   **kwargs)
    if kind in POOL_TYPES:
        one_d = rank == 1
        cls = {("maxpool", False): layers.MaxPool2D, ("maxpool", True): layers.MaxPool1D,
               ("avgpool", False): layers.AvgPool2D, ("avgpool", True): layers.AvgPool1D}
        return cls[(kind, one_d)](row["pool_size"], row["pool_strides"], device=device,
                                  name=name, pool_dilation=row.get("pool_dilation", 1))
    if kind == "flatten":
        return keras.layers.Flatten(name=name)
    if kind == "dropout":
        return keras.layers.Dropout(row["rate"], name=name)
    return keras.layers.Reshape(tuple(row["target_shape"]), name=name)


def _apply(row, index, name, tensor, device):
    """Apply one row to a symbolic tensor; returns (output tensor, layer) or raises SpecError."""
    try:
        layer = _make_layer(row, name, len(tensor.shape) - 2, device)
        return layer(tensor), layer
    except Ai8xNbError as err:
        raise SpecError(f"Model spec row {index} ({row['type']}): {err}", index) from err
    except (ValueError, TypeError, KeyError) as err:
        raise SpecError(f"Model spec row {index} ({row['type']}): {err}", index) from err


def _check_classes(out_shape, num_classes, last_index):
    if num_classes is not None and (len(out_shape) != 1 or out_shape[0] != num_classes):
        raise SpecError(
            f"Model spec row {last_index}: the model outputs shape {out_shape} but the dataset "
            f"has {num_classes} classes; end with a layer of {num_classes} outputs (e.g. "
            f"dense units={num_classes}, wide=True, or a 1x1 conv2d with {num_classes} filters "
            f"followed by flatten).", last_index)


def spec_to_model(spec, input_shape, num_classes=None, device=None, *, name="model"):
    """Build a functional Keras model from a spec.

    Args:
        spec: list of row dicts (see the module docstring).
        input_shape: one sample's shape without the batch axis, e.g. (28, 28, 1).
        num_classes: when given, the model output must be `(num_classes,)`.
        device: "MAX78000" or "MAX78002"; every layer validates against it.
        name: the Keras model name.

    Returns:
        A built `keras.Model` (uncompiled).

    Raises:
        SpecError: a malformed row, or a layer the device cannot run; the message names the
            row index and carries the layer's own explanation.

    Example:

    >>> model = spec_to_model(seed_spec("mnist"), (28, 28, 1), 10)  # doctest: +SKIP
    """
    import keras

    rows = normalize_spec(spec)
    if not rows:
        raise SpecError("The model spec is empty; add at least one layer.")
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs
    for i, (row, layer_name) in enumerate(zip(rows, layer_names(rows))):
        x, _ = _apply(row, i, layer_name, x, device)
    _check_classes(tuple(x.shape[1:]), num_classes, len(rows) - 1)
    return keras.Model(inputs, x, name=name)


def validate_spec(spec, input_shape, device=None, num_classes=None):
    """Check each row of a spec and report shapes and parameters, row by row.

    A row that fails is skipped for the rows after it (they see its input), so one mistake
    does not hide the others.

    Args:
        spec: list of row dicts.
        input_shape: one sample's shape without the batch axis.
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.
        num_classes: when given, the last row's output must be `(num_classes,)`.

    Returns:
        A list with one `(ok, message, output_shape, params)` tuple per row: `message` is
        "" when ok, else the error text; `output_shape` is the channels-last output without
        batch (or None); `params` the row's parameter count.
    """
    import keras

    results = []
    x = keras.Input(shape=tuple(input_shape))
    for i, (raw, layer_name) in enumerate(zip(spec, layer_names(spec))):
        try:
            row = normalize_row(raw, i)
            y, layer = _apply(row, i, layer_name, x, device)
        except SpecError as err:
            results.append((False, str(err), None, 0))
            continue
        x = y
        results.append((True, "", tuple(y.shape[1:]), int(layer.count_params())))
    if num_classes is not None and results and results[-1][0]:
        last = len(results) - 1
        try:
            _check_classes(results[last][2], num_classes, last)
        except SpecError as err:
            _, _, shape, params = results[last]
            results[last] = (False, str(err), shape, params)
    return results


# ------------------------------------------------------------ model -> spec
def _layer_row(layer):
    """The canonical row of one Keras layer; raises SpecError for layers a spec cannot hold."""
    import keras

    from ai8x_nb import layers

    if isinstance(layer, layers.HardwareLayer) and not layer.has_operator:
        row = {"type": f"{layer.pooling}pool", "pool_size": layer.pool_size,
               "pool_strides": layer.pool_strides}
        if layer.pool_dilation:
            row["pool_dilation"] = layer.pool_dilation
        return normalize_row(row)
    if isinstance(layer, (layers.Conv2D, layers.Conv1D, layers.ConvTranspose2D, layers.Dense)):
        if isinstance(layer, layers.Dense):
            row = {"type": "dense", "units": layer.units}
        else:
            kind = {layers.ConvTranspose2D: "convtranspose2d", layers.Conv2D: "conv2d",
                    layers.Conv1D: "conv1d"}[type(layer)]
            row = {"type": kind, "filters": layer.filters, "kernel_size": layer.kernel_size,
                   "padding": layer.padding, "pooling": layer.pooling,
                   "pool_size": layer.pool_size, "pool_strides": layer.pool_strides}
        row.update(activation=layer.activation, wide=layer.wide, use_bias=layer.use_bias)
        if layer.batch_norm is not None:
            row["batch_norm"] = layer.batch_norm
        if layer.weight_bits != 8:
            row["weight_bits"] = layer.weight_bits
        if getattr(layer, "dilation", 1) != 1:
            row["dilation"] = layer.dilation
        if getattr(layer, "pool_dilation", None):
            row["pool_dilation"] = layer.pool_dilation
        if getattr(layer, "groups", 1) != 1:
            row["groups"] = layer.groups
        reg = layer.kernel_regularizer
        if reg is not None:
            l2 = reg.get_config().get("l2") if hasattr(reg, "get_config") else None
            if l2 is None or reg.get_config().get("l1"):
                raise SpecError(f"Layer '{layer.name}': only an L2 kernel regulariser fits "
                                f"in a model spec, got {reg!r}.")
            row["l2"] = float(l2)
        return normalize_row(row)
    if isinstance(layer, keras.layers.Flatten):
        return {"type": "flatten"}
    if isinstance(layer, keras.layers.Dropout):
        return {"type": "dropout", "rate": float(layer.rate)}
    if isinstance(layer, keras.layers.Reshape):
        return {"type": "reshape", "target_shape": [int(v) for v in layer.target_shape]}
    raise SpecError(f"Layer '{layer.name}' ({type(layer).__name__}) has no model-spec form; "
                    f"a spec holds ai8x_nb.layers layers plus Flatten, Dropout and Reshape.")


def model_to_spec(model):
    """Describe a sequential chain of layers as a spec.

    Args:
        model: a Sequential or functional Keras model whose layers form one chain.

    Returns:
        The canonical spec (list of dicts); `spec_to_model(model_to_spec(m), ...)` rebuilds
        the same architecture.

    Raises:
        SpecError: a layer a spec cannot express (e.g. Add, a branch, a Keras Conv2D).
    """
    import keras

    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if len(getattr(layer, "_inbound_nodes", [])) > 1 or isinstance(
                getattr(layer, "input", None), (list, tuple)):
            raise SpecError(f"Layer '{layer.name}' takes several inputs or is reused; a spec "
                            f"describes a single chain of layers only.")
        rows.append(_layer_row(layer))
    return rows


# ------------------------------------------------------------------ text
def python_literal(value):
    """Python source of a value as people write it: strings in double quotes, dicts
    item by item, a non-finite float as None.

    Example:

    >>> python_literal({"start_epoch": 1, "policy": 'default'})
    '{"start_epoch": 1, "policy": "default"}'
    """
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "None"
    return repr(value)


def spec_to_python(spec, variable="model_spec"):
    """Python source of a spec as a literal assignment, one row per line.

    Paste it into a notebook's `parameters` cell.

    Example:

    >>> print(spec_to_python([{"type": "flatten"}]))
    model_spec = [
        {"type": "flatten"},
    ]
    """
    lines = [f"{variable} = ["]
    for row in normalize_spec(spec):
        items = ", ".join(f'"{k}": {python_literal(v)}' for k, v in row.items())
        lines.append(f"    {{{items}}},")
    lines.append("]")
    return "\n".join(lines)
