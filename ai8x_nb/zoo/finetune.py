"""Start training from a trained model: an imported vendor network or any saved model.

`load_for_fine_tuning` loads a `.keras` file (e.g. written by `ai8x-nb import ... --out`) and,
when the new dataset has another number of classes (or a new head is asked for), replaces the
classifier head: the last layer with weights gets a fresh layer of the same kind and settings
(bits, wide output, QAT) with one output per class; every other layer keeps its trained
weights, bit widths and output shifts. An imported model is already quantized, so training
continues with QAT at its bit widths.
"""

import logging

from ai8x_nb.errors import TrainingError

__all__ = ["load_for_fine_tuning", "replace_head"]

logger = logging.getLogger(__name__)


def _head(model):
    """The last layer with weights, and the weightless layers after it up to the output."""
    layers = list(model.layers)
    for index in range(len(layers) - 1, -1, -1):
        if layers[index].weights:
            trailing = layers[index + 1:]
            break
    else:
        raise TrainingError(f"Model '{model.name}' has no layer with weights: no head to "
                            f"replace.")
    head = layers[index]
    for layer in trailing:
        if layer.weights or len(layer._inbound_nodes) != 1 or isinstance(layer.input, list):
            raise TrainingError(
                f"Model '{model.name}': the layers after its head '{head.name}' are not a "
                f"simple chain ('{layer.name}'); replace the head by hand (keras functional "
                f"API) and pass the model itself.")
    if len(model.outputs) != 1:
        raise TrainingError(f"Model '{model.name}' has {len(model.outputs)} outputs; a new "
                            f"head is made for single-output classifiers only.")
    return head, trailing


def replace_head(model, num_classes):
    """A copy of `model` (same layers, same weights) with a new head of `num_classes` outputs.

    Args:
        model: a built functional `keras.Model` whose output is its last weighted layer
            (Dense, or a wide 1x1 convolution) followed only by weightless layers (Flatten).
        num_classes: outputs of the new head, >= 2.

    Returns:
        A new `keras.Model` (same name); the head's settings are kept, its fixed
        output_shift (if any) is dropped so that it is derived from the new weights.

    Raises:
        TrainingError: no such head, several outputs, or a bad class count.

    Example:

    >>> model = replace_head(imported, 10)  # doctest: +SKIP
    """
    import keras

    if not isinstance(num_classes, int) or num_classes < 2:
        raise TrainingError(f"num_classes={num_classes!r}: a classifier head needs 2 or more "
                            f"outputs.")
    head, trailing = _head(model)
    config = head.get_config()
    key = "units" if "units" in config else "filters" if "filters" in config else None
    if key is None:
        raise TrainingError(f"Head '{head.name}' ({type(head).__name__}) has neither units nor "
                            f"filters; replace it by hand.")
    for layer in trailing:
        if "target_shape" in layer.get_config():
            raise TrainingError(f"Layer '{layer.name}' after the head reshapes to a fixed "
                                f"shape; replace the head by hand.")
    config[key] = num_classes
    if "output_shift" in config:
        config["output_shift"] = None

    def clone(layer):
        if layer is head:
            return type(head).from_config(config)
        return type(layer).from_config(layer.get_config())

    # A fresh graph (its own Input): a model made of another model's tensors misbehaves in
    # Keras once it has run on inputs of another shape.
    new = keras.models.clone_model(model, clone_function=clone)
    for old, copy in zip(model.layers, new.layers):
        if old is not head and old.weights:
            copy.set_weights(old.get_weights())
    logger.info("Head '%s' replaced: %d -> %d outputs (fresh weights).", head.name,
                int(head.output.shape[-1]), num_classes)
    return new


def load_for_fine_tuning(source, num_classes=None, *, new_head=False, device=None):
    """Load a trained model to continue training it on another dataset.

    Args:
        source: a `keras.Model`, or a `.keras` file (read in safe mode) or any model spec
            `ai8x_nb.modelio.source.load_model_source` accepts.
        num_classes: the new dataset's class count; the head is replaced when the model's
            output count differs.
        new_head: replace the head even when the class count is the same (other classes).
        device: refuse a model built for another device (None: any).

    Returns:
        The `keras.Model` to pass to `ai8x_nb.training.train`.

    Raises:
        TrainingError: the model is for another device or its head cannot be replaced.

    Example:

    >>> model = load_for_fine_tuning("kws20_v3.keras", num_classes=21)  # doctest: +SKIP
    >>> train(model, "kws20", epochs=10)  # doctest: +SKIP
    """
    from ai8x_nb.modelio.inputs import model_device
    from ai8x_nb.modelio.source import load_model_source

    model = load_model_source(source, device=device)
    if device is not None and model_device(model).name != str(device).upper():
        raise TrainingError(f"Model '{model.name}' is built for {model_device(model).name}, "
                            f"not {str(device).upper()}; import or build it for that device.")
    outputs = int(model.outputs[0].shape[-1])
    if new_head or (num_classes is not None and num_classes != outputs):
        model = replace_head(model, num_classes if num_classes is not None else outputs)
    return model
