"""Export a trained model to every target: synthesis package, float ONNX, SavedModel, TFLite.

`export_model` writes one folder (`export/<name>/` by default):

- `saved_model/` and `saved_model.onnx`: the float model (ONNX checked against Keras).
- `<name>-q.pth.tar`, `<name>.yaml`, `sampledata.npy`, `sampleoutput.npy`, `ai8xize_command.txt`:
  the package for the vendor's synthesis tool (`ai8xize.py`), refused with the check report
  when the device cannot run the model; `samplelayers.npz`: every hardware layer's output for
  the sample (`synthesize(..., trace=True)` compares it with the tool's log).
- `model_float.tflite`, `model_int8.tflite`: TFLite float and full-int8 (builtins only).
- `manifest.json`: artifacts by role, device, dataset, accuracies measured at export.

The folder appears only when everything asked for succeeded (or was skipped with a reason);
a failure leaves no folder that looks complete.

Example:

>>> from ai8x_nb.export import export_model  # doctest: +SKIP
>>> manifest = export_model(model, "export/mnist", dataset=ds)  # doctest: +SKIP
>>> manifest.accuracy  # doctest: +SKIP
{'keras_float': 0.99, 'integer_simulation': 0.989, 'tflite_float': 0.99, 'tflite_int8': 0.989}
"""

from ai8x_nb.export.exporter import TARGETS, ai8xize_command, export_model, export_run
from ai8x_nb.export.package import MANIFEST_NAME, ROLES, Manifest

__all__ = ["TARGETS", "ROLES", "MANIFEST_NAME", "Manifest", "ai8xize_command", "export_model",
           "export_run"]
