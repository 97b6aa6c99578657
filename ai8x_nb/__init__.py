"""ai8x-nb: a notebook workbench for the MAX78000 / MAX78002 CNN accelerator.

Public API (imported lazily, so `import ai8x_nb` and the CLI start fast):

- devices: `get_device`, `MAX78000`, `MAX78002`
- layers: `ai8x_nb.layers` (Conv2D, Conv1D, ConvTranspose2D, Dense, pools, Add/Sub/Xor/Or,
  Concatenate)
- `check_model(model, device="MAX78000")`: per-layer hardware report
- datasets: `load_dataset(name, ...)` (= `ai8x_nb.datasets.load`)
- seed models: `get_model(name)`
- training: `train(...)`
- quantization: `QATPolicy`, `load_policy`, `enable_qat`, `QATCallback`, `convert`
- integer simulator: `simulate`, `evaluate_quantized`
- export: `export_model`, `export_run`
- synthesis: `synthesize(export_dir)` runs the vendor's `ai8xize.py`, verifies its known answer;
  `build_firmware(project_dir)` compiles and links the C project it writes
- the vendor's trained networks: `import_synthesis(checkpoint, yaml)` (a quantized Keras model),
  `load_for_fine_tuning(model_file, num_classes)` to continue training one
- notebooks in batch: `run_notebook`, `run_all`
- output: `setup_notebook()` (first line of a notebook, before `import keras`): TensorFlow's
  start-up noise filtered, the package's messages shown as ordinary output

Example:

>>> import ai8x_nb
>>> model = ai8x_nb.get_model("mnist")
>>> print(ai8x_nb.check_model(model))
"""

import importlib

__version__ = "0.1.0"

_API = {
    "get_device": "ai8x_nb.devices",
    "MAX78000": "ai8x_nb.devices",
    "MAX78002": "ai8x_nb.devices",
    "check_model": "ai8x_nb.check",
    "load_dataset": ("ai8x_nb.datasets", "load"),
    "get_model": "ai8x_nb.models",
    "train": "ai8x_nb.training",
    "QATPolicy": "ai8x_nb.quantize",
    "load_policy": "ai8x_nb.quantize",
    "enable_qat": "ai8x_nb.quantize",
    "QATCallback": "ai8x_nb.quantize",
    "convert": "ai8x_nb.quantize",
    "simulate": "ai8x_nb.simulate",
    "evaluate_quantized": "ai8x_nb.evaluate",
    "export_model": "ai8x_nb.export",
    "export_run": "ai8x_nb.export",
    "synthesize": "ai8x_nb.synthesis",
    "SynthesisResult": "ai8x_nb.synthesis",
    "build_firmware": "ai8x_nb.synthesis",
    "import_synthesis": "ai8x_nb.zoo.importer",
    "load_for_fine_tuning": "ai8x_nb.zoo.finetune",
    "run_notebook": "ai8x_nb.notebooks",
    "run_all": "ai8x_nb.notebooks",
    "setup_notebook": "ai8x_nb.console",
}

__all__ = sorted(_API)


def __getattr__(name):
    target = _API.get(name)
    if target is None:
        raise AttributeError(f"module 'ai8x_nb' has no attribute {name!r}")
    module_name, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
