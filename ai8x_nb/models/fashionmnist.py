"""The seed Fashion-MNIST model: the MNIST stack with biases on (71,346 parameters).

Example:

>>> INFO.build().count_params()  # doctest: +SKIP
71346
"""

from ai8x_nb.models import mnist
from ai8x_nb.models.base import ModelInfo

SPEC = tuple({**row, "use_bias": True} if "use_bias" in row else row for row in mnist.SPEC)
"""The MNIST layers, every convolution with a bias."""

INFO = ModelInfo(
    name="fashionmnist", spec=SPEC, dataset="fashionmnist", num_classes=10,
    input_shape=(28, 28), spec_input_shape=(28, 28, 1), batch_size=256, lr=1e-3,
    params=71_346,
    description="Fashion-MNIST: 4 convs + wide linear, all biases, 91.48 % in the seed")
