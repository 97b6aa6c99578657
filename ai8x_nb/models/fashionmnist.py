"""The seed Fashion-MNIST model: the MNIST stack with biases on (71,346 parameters)."""

from ai8x_nb.models import mnist
from ai8x_nb.models.base import ModelInfo


def build(device="MAX78000"):
    """Build the seed Fashion-MNIST model (MNIST architecture, every layer with a bias).

    Args:
        device: "MAX78000" or "MAX78002".

    Returns:
        A built, uncompiled functional `keras.Model` mapping (N, 28, 28) to (N, 10) logits.

    Example:

    >>> build().count_params()
    71346
    """
    return mnist.build(device, bias=True, name="fashionmnist")


INFO = ModelInfo(
    name="fashionmnist", build=build, dataset="fashionmnist", num_classes=10,
    input_shape=(28, 28), batch_size=256, lr=1e-3, params=71_346,
    description="Fashion-MNIST: 4 convs + wide linear, all biases, 91.48 % in the seed")
