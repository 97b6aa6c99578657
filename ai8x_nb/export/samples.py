"""The synthesis known-answer pair: `sampledata.npy` (input) and `sampleoutput.npy`.

The synthesis tool reads an int64 array in [-128, 127], channel-first, no batch axis
(ai8x reference section 6): (C, H, W) for 2D inputs, (C, L) for 1D (kws20: (128, 128)),
(N, 1, 1) when the first layer is a linear one. `sampleoutput.npy` is what our integer
simulator computes for that input, laid out as the device leaves it: the last hardware layer's
output channel-first, also when the Keras model flattens it afterwards (for a wide last layer:
the raw 32-bit accumulator values).
"""

import numpy as np

from ai8x_nb.errors import ExportError

__all__ = ["sample_input", "sample_output", "sample_outputs", "sample_layers", "save_npy",
           "channel_first"]


def channel_first(x):
    """(H, W, C) -> (C, H, W), (L, C) -> (C, L); flat vectors stay as they are. int64."""
    x = np.asarray(x)
    if x.ndim >= 2:
        x = np.moveaxis(x, -1, 0)
    return np.ascontiguousarray(x, dtype=np.int64)


def sample_input(x, graph):
    """The synthesis sample input for one raw sample.

    Args:
        x: one sample, int8/int values in [-128, 127], any layout with the model's element
            count (the dataset's (H, W, C), or the model's raw input shape).
        graph: the `ModelGraph`; `graph.input_shape` is what the first hardware layer reads.

    Returns:
        int64 array, channel-first, no batch axis.

    Raises:
        ExportError: the sample does not have the model's number of values, or values
            outside [-128, 127].
    """
    x = np.asarray(x)
    shape = tuple(int(s) for s in graph.input_shape)
    if x.size != int(np.prod(shape)):
        raise ExportError(f"The sample has shape {x.shape} ({x.size} values); the model input "
                          f"{shape} needs {int(np.prod(shape))}. Pass the model's dataset.")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ExportError(f"The sample spans [{x.min()}, {x.max()}]; the device reads "
                          f"[-128, 127]. Use the int8 dataset values, not x / 128.")
    if len(shape) == 1:
        return np.ascontiguousarray(x.reshape(shape + (1, 1)), dtype=np.int64)
    return channel_first(x.reshape(shape))


def sample_output(qmodel, x_raw, simulate):
    """The integer simulator's output for one sample as the device leaves it (int64).

    Args:
        qmodel: the `QuantizedModel`.
        x_raw: one sample in the model's raw input layout (`graph.raw_input_shape`).
        simulate: `ai8x_nb.simulate.simulate`.

    Returns:
        The last hardware layer's output, channel-first, no batch axis: a Flatten after it
        only relabels memory on the device, so its HWC order is not applied.
    """
    graph = qmodel.graph
    return sample_outputs(qmodel, x_raw, simulate)[graph.output_index]


def sample_outputs(qmodel, x_raw, simulate):
    """Every model output for one sample, as the device leaves it: `{hardware layer index:
    channel-first int64 array}` (one entry for a single-output model)."""
    ys = simulate(qmodel, np.asarray(x_raw, dtype=np.int64)[None])
    graph = qmodel.graph
    if not graph.several_outputs:
        ys = [ys]
    found = {}
    for index, y in zip(graph.output_indices, ys):
        out_shape = tuple(int(s) for s in graph.layers[index].out_shape)
        found[index] = channel_first(np.asarray(y)[0].reshape(out_shape))
    return found


def sample_layers(qmodel, x_raw, path):
    """Save every hardware layer's output for one sample, channel-first (`samplelayers.npz`).

    What `synthesize(..., trace=True)` compares with the tool's log, layer by layer: key
    `layer_<i>` holds hardware layer i's output as the simulator computes it.

    Args:
        qmodel: the `QuantizedModel`.
        x_raw: one sample in the model's raw input layout.
        path: the `.npz` file to write.
    """
    from ai8x_nb.simulate import simulate_layers  # the simulator imports Keras

    outputs = simulate_layers(qmodel, np.asarray(x_raw, dtype=np.int64)[None])
    np.savez_compressed(path, **{f"layer_{i}": channel_first(y[0])
                                 for i, y in enumerate(outputs)})
    return path


def save_npy(path, array):
    """Save without pickling (what the synthesis tool loads)."""
    np.save(path, np.asarray(array, dtype=np.int64), allow_pickle=False)
    return path
