"""The vendor's trained model zoo in the workbench.

- `read_checkpoint(path)`: a PyTorch `.pth.tar` as NumPy arrays, through an allow-listed
  unpickler (nothing in the file runs);
- `import_synthesis(checkpoint, yaml)`: a checkpoint plus its synthesis network YAML as a
  quantized Keras model of `ai8x_nb.layers` (simulate, check, export and synthesize it as
  any other model).
"""

from ai8x_nb.zoo.pthfile import read_checkpoint

__all__ = ["read_checkpoint", "import_synthesis"]


def __getattr__(name):
    if name == "import_synthesis":  # imports Keras: keep `read_checkpoint` light
        from ai8x_nb.zoo.importer import import_synthesis

        return import_synthesis
    raise AttributeError(f"module 'ai8x_nb.zoo' has no attribute {name!r}")
