"""The command line of the vendor's synthesis tool (`ai8xize.py`) for one export.

Plain text and numbers only: the exporter writes the command into an export's README and
`ai8x_nb.synthesis` runs it; neither the tool nor its environment is needed here.
"""

import numpy as np

__all__ = ["SCRIPT", "tool_arguments", "streams", "wants_softmax"]

SCRIPT = "ai8xize.py"
"""The tool's script, run from its own folder."""


def tool_arguments(*, prefix, device, checkpoint, config, sample, test_dir, verbose=True,
                   softmax=True, fifo=False, deduplicate=True):
    """The arguments of `ai8xize.py` for one export (absolute paths).

    Args:
        prefix: the C project's name (`--prefix`); the project lands in `test_dir/prefix`.
        device: "MAX78000" or "MAX78002"; None: `ai8x_nb.devices.DEFAULT_DEVICE`.
        checkpoint, config, sample: the weights (`.pth.tar`), network YAML and sample input.
        test_dir: where the tool writes (`--test-dir`).
        verbose: log every layer's output (the known answer is read from that log).
        softmax: have `main.c` run a softmax over the output (`--softmax`). Pass False for an
            8-bit output: the tool's softmax then calls CMSIS-NN's `arm_softmax_q7_q15`
            without declaring `q7_t`, and that `main.c` does not compile.
        fifo: load the input through the FIFOs (`--fifo`), as streaming layers need.
        deduplicate: let the tool share identical kernels and biases between layers (its
            default). False adds `--no-deduplicate-weights`, which depthwise networks need
            (see `depthwise`).

    Returns:
        A list of strings, starting with `ai8xize.py`.
    """
    args = [SCRIPT, "--no-version-check", "--overwrite", "--test-dir", str(test_dir),
            "--prefix", str(prefix), "--checkpoint-file", str(checkpoint),
            "--config-file", str(config), "--sample-input", str(sample), "--device", str(device),
            "--compact-data", "--mexpress", "--timer", "0", "--display-checkpoint",
            "--no-progress"]
    if softmax:
        args.insert(args.index("--compact-data"), "--softmax")
    if fifo:
        args.insert(args.index("--compact-data"), "--fifo")
    if not deduplicate:
        args.insert(args.index("--compact-data"), "--no-deduplicate-weights")
    if verbose:
        args.append("--verbose")
    return args


def streams(layers):
    """True when a network YAML's layers (a list of dicts) stream: the tool needs `--fifo`."""
    return any(bool(layer.get("streaming")) for layer in layers or ())


def depthwise(layers):
    """True when a network YAML's layers (a list of dicts) have a depthwise convolution.

    The tool (ab4f4c0) then needs `--no-deduplicate-weights`: it keeps a depthwise layer's
    bias in every quadrant (its bias group is the string 'all'), and when another layer's
    bias has the same integer values it shares that entry and stops with a TypeError
    (`1 << bias_group[ll]`); measured on generated depthwise models with many layers.
    """
    return any(int(layer.get("groups", layer.get("conv_groups", 1)) or 1) > 1
               for layer in layers or ())


def wants_softmax(wide, output_shape):
    """True when the C project should run the tool's softmax (`--softmax`): the last layer is
    wide (32-bit) and its output is one score per class (`output_shape` channel-first, e.g.
    (10, 1, 1)). Otherwise the tool's `main.c` does not compile (8-bit output) or its softmax
    buffers can exceed the Arm core's SRAM (a feature map)."""
    return bool(wide) and int(np.prod(tuple(output_shape)[1:])) == 1
