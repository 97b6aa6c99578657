"""Write the dataset notebooks (notebooks/<dataset>.ipynb) from one template.

Every notebook has the same skeleton (keras-io header, Parameters, Setup, Data, Model, Train,
Evaluate, Quantize, Export, Synthesize, Summary); only the dataset facts below differ. Run it after
changing the template and commit the generated notebooks (outputs cleared, tags kept):

    python tools/make_notebooks.py            # all (six datasets, images, keywords)
    python tools/make_notebooks.py mnist      # one
"""

import argparse
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ai8x_nb import parameters  # noqa: E402
from ai8x_nb.models import MODELS, get_info, seed_spec  # noqa: E402
from ai8x_nb.training.notebook_settings import SHORT_RUN_KEYS  # noqa: E402

DATE_CREATED = "2026/11/22"
SHORT_RUN_DEFAULTS = {"batch_size": 64, "lr": 1e-3, "schedule": "cosine"}
"""The short-run values of a notebook whose dataset gives none (`DATASETS[...]["parameters"]`
may set batch_size, lr and schedule): what None means when the recipe has no value."""
FULL_EPOCHS = {"mnist": 15}
"""Epochs of the "full run" line per notebook (20 when not listed): the budgets in which the
"fast" recipe reached its README numbers."""


def _fast_recipe_text(name):
    """What the "fast" recipe does on the dataset of notebook `name`, for its parameters text."""
    from ai8x_nb.training.plan import recipe_for

    recipe = recipe_for("fast", name)
    parts = ["augmentation" if recipe.augment else "no augmentation",
             "cosine learning rate with warm-up"]
    parts += [text for on, text in ((recipe.weight_decay, "weight decay"),
                                    (recipe.label_smoothing, "label smoothing"),
                                    (recipe.batch_norm, "BatchNorm in the float phase")) if on]
    part = {0.2: "fifth", 0.25: "quarter", 0.5: "half"}.get(recipe.qat_fraction)
    if part:
        parts.append(f"QAT for the last {part}")
    return ", ".join(parts)


DEVICE_TEXT = (
    "The [MAX78000](https://www.analog.com/en/products/max78000.html) is an Arm Cortex-M4 "
    "microcontroller from Analog Devices with a CNN accelerator: 64 parallel processors, "
    "432 KiB of weight memory for 8-bit (or 1/2/4-bit) weights, 512 KiB of data memory and "
    "up to 32 layers (the MAX78002 is its larger sibling). It computes in integers: inputs and "
    "activations are signed 8-bit values in [-128, 127], each layer's output is scaled by a "
    "power of two, rounded and clamped.")

FLOW_TEXT = (
    "This notebook trains the model in float, then with quantization-aware training (QAT) so "
    "it keeps its accuracy in 8 bits, checks it against the device limits, compares float, "
    "fake-quantized and integer-simulated accuracy, and exports the package the vendor's "
    "synthesis tool (`ai8xize.py`) turns into C code, plus ONNX and TFLite (float and int8).")

DATASETS = {
    "mnist": {
        "title": "Handwritten digits (MNIST) on the MAX78000",
        "description": "Train, quantize and export a 5-layer CNN that reads MNIST digits on "
                       "the MAX78000 CNN accelerator.",
        "model": "The model is the vendor's MNIST network: four 3x3 convolutions with ReLU, the "
                 "last three with a fused 2x2 max or average pooling in front, then a wide "
                 "(32-bit) linear layer to the 10 classes; 71,158 parameters.",
        "data": "MNIST: 60,000 training and 10,000 test images of handwritten digits, 28x28 "
                "grayscale, read from the four official IDX files. 10 % of the training images "
                "are held out for validation; the test split is only used for the final "
                "numbers.",
        "parameters": {"batch_size": 64, "lr": 0.002},
    },
    "fashionmnist": {
        "title": "Clothing images (Fashion-MNIST) on the MAX78000",
        "description": "Train, quantize and export a 5-layer CNN that classifies Fashion-MNIST "
                       "clothing images on the MAX78000 CNN accelerator.",
        "model": "The model is the MNIST network with biases: four 3x3 convolutions with ReLU "
                 "and fused pooling, then a wide linear layer to the 10 classes; 71,346 "
                 "parameters.",
        "data": "Fashion-MNIST: 60,000 training and 10,000 test images of 10 kinds of clothing, "
                "28x28 grayscale, in the MNIST file format. 10 % of the training images are "
                "held out for validation.",
        "parameters": {"batch_size": 64, "lr": 0.002},
    },
    "cifar10": {
        "title": "CIFAR-10 image classification on the MAX78000",
        "description": "Train, quantize and export a 5-layer CNN for CIFAR-10 colour images on "
                       "the MAX78000 CNN accelerator.",
        "model": "The model has four 3x3 convolutions without bias, with fused max/avg pooling, "
                 "then a wide linear layer to the 10 classes; 72,228 parameters.",
        "data": "CIFAR-10: 50,000 training and 10,000 test colour images (32x32x3) in 10 "
                "classes, read from the official python pickles. `allow_partial=True` accepts "
                "an incomplete copy (whichever batches are present), as in CI.",
        "parameters": {"batch_size": 64, "lr": 0.001, "allow_partial": True},
    },
    "cifar100": {
        "title": "CIFAR-100 image classification on the MAX78000",
        "description": "Train, quantize and export a 14-layer CNN for the 100 classes of "
                       "CIFAR-100 on the MAX78000 CNN accelerator.",
        "model": "The model is a 14-layer network of 3x3 and 1x1 convolutions without bias, "
                 "max pooling fused into five of them, ending in a wide 1x1 convolution to the "
                 "100 classes; 381,792 parameters.",
        "data": "CIFAR-100: 50,000 training and 10,000 test colour images (32x32x3) in 100 fine "
                "classes, read from the official `cifar-100-python` pickles (downloaded into "
                "`data_dir` when missing and a network is available).",
        "parameters": {"batch_size": 32, "lr": 0.0003},
    },
    "kws20": {
        "title": "Keyword spotting (KWS20) on the MAX78000",
        "description": "Train, quantize and export a keyword-spotting network that recognises "
                       "20 spoken words (plus 'unknown') on the MAX78000 CNN accelerator.",
        "model": "The model reads one second of 16 kHz audio laid out as 128 rows of 128 "
                 "samples: four 1x1 Conv1D layers treat each row as a time step with 128 "
                 "channels, a reshape turns the result into an 8x16 image with 16 channels, five "
                 "3x3 Conv2D layers follow, and a wide linear layer gives 21 classes; 126,490 "
                 "parameters.",
        "data": "KWS20: the 20 keywords of Google Speech Commands v0.02 (up, down, left, right, "
                "stop, go, yes, no, on, off, one to nine, zero) plus class 20 'unknown'. Each "
                "clip's first 16,384 samples become a 128x128 int8 layout; the training split "
                "gets augmented copies (time shift, stretch, white noise). **The default "
                "`dataset_folder='kws-espeak-large'` holds SYNTHETIC clips, not human speech:** "
                "1,250 words spoken by the espeak-ng speech synthesizer with 50 voice settings, "
                "in the Speech Commands folder layout, so the demo runs offline. Accuracy on "
                "them says the pipeline works, not how well the model hears people; set "
                "`dataset_folder=None` for the real dataset.",
        "parameters": {"batch_size": 32, "lr": 0.002, "dataset_folder": "kws-espeak-large",
                       "epochs": 8},
        "train_split_note": " (the training split includes its augmented copies)",
    },
    "rock": {
        "title": "Rock, paper, scissors on the MAX78000",
        "description": "Train, quantize and export a 7-layer CNN that tells rock, paper and "
                       "scissors hand shapes apart on the MAX78000 CNN accelerator.",
        "model": "The model has six 3x3 convolutions with ReLU and fused max pooling, dropout, "
                 "and a wide linear layer to the 3 classes; 54,693 parameters.",
        "data": "Rock-Paper-Scissors: 2,520 training and 372 test computer-generated images of "
                "hands (300x300 PNGs, resized to 64x64x3), read from the extracted `rps/` and "
                "`rps-test-set/` folders (downloaded into `data_dir` when missing and a network "
                "is available).",
        "parameters": {"batch_size": 32, "lr": 0.001},
    },
}

FOLDER_NOTEBOOKS = {
    "images": {
        "kind": "images",
        "seed": "rock",
        "title": "Your own images on the MAX78000",
        "description": "Train, quantize and export a CNN that tells your own classes of "
                       "images apart (a folder with one sub-folder per class) on the MAX78000 "
                       "CNN accelerator.",
        "model": "The model starts from the Rock-Paper-Scissors network (six 3x3 convolutions "
                 "with ReLU and fused max pooling, dropout, a wide linear layer), its last "
                 "layer given one output per class of your folder; `model_name` starts from "
                 "another seed's layers, `model_spec` from your own, `init_from` from a "
                 "trained model.",
        "data": "Your images: `data_folder` holds one sub-folder per class "
                "(`shapes/circle/*.png`, `shapes/square/*.png`, ...; PNG, JPEG, BMP or GIF). "
                "They are converted to RGB and resized to `image_size`; files that are not "
                "readable images are skipped and named in a warning. Each class is split "
                "80/10/10 into train, valid and test (at least one sample each), the same way "
                "on every run. The table below gives the counts per split, then warnings "
                "about classes with few samples or a large imbalance.",
        "parameters": {"batch_size": 32, "lr": 0.001, "image_size": "64x64"},
    },
    "keywords": {
        "kind": "audio",
        "seed": "kws20",
        "title": "Your own keywords on the MAX78000",
        "description": "Train, quantize and export a keyword-spotting network for your own "
                       "words (a folder with one sub-folder of WAV recordings per word) on the "
                       "MAX78000 CNN accelerator.",
        "model": "The model starts from the KWS20 network (four 1x1 Conv1D layers over 128 "
                 "time steps of 128 samples, a reshape, five 3x3 Conv2D layers, a wide linear "
                 "layer), its last layer given one output per word of your folder; "
                 "`model_name` starts from another seed's layers, `model_spec` from your own, "
                 "`init_from` from a trained model.",
        "data": "Your keywords: `data_folder` holds one sub-folder of WAV clips per word "
                "(`words/yes/*.wav`, `words/no/*.wav`, ...). Each clip's first 16,384 samples "
                "at 16 kHz become a 128x128 int8 layout; clips at another rate are resampled "
                "to 16 kHz and stereo clips mixed to mono (a warning counts them), files that "
                "are not readable WAVs are skipped and named. Each word is split 80/10/10 into "
                "train, valid and test (at least one clip each). The table below gives the "
                "counts per split, then warnings about words with few clips or a large "
                "imbalance.",
        "parameters": {"batch_size": 32, "lr": 0.002},
    },
}
"""The notebooks of a folder of your own: the same skeleton, a `data_folder` parameter and
their own Data section."""


def _md(text):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def _code(text, tags=()):
    cell = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _seed_note(value, seed_value):
    if value == seed_value:
        return "the seed's"
    return f"the seed's {seed_value!r} is for 100 epochs"


def short_run(info):
    """A notebook's short-run batch size, learning rate and schedule (what None means when the
    recipe has none): its dataset's values over `SHORT_RUN_DEFAULTS`."""
    values = dict(SHORT_RUN_DEFAULTS)
    values.update({k: v for k, v in info["parameters"].items() if k in SHORT_RUN_KEYS})
    return values


def parameters_source(name, info):
    """The literal-only parameters cell of one notebook: the contract table's values, the
    dataset's demo values over them, and the seed model's spec. Batch size, learning rate and
    schedule stay None (the recipe's, else the notebook's short-run values of `short_run`)."""
    given = {k: v for k, v in info["parameters"].items() if k not in SHORT_RUN_KEYS}
    values = parameters.defaults(**given, model_spec=seed_spec(name))
    seed, run = get_info(name), short_run(info)
    comments = {
        "batch_size": f"None: the recipe's, else {run['batch_size']} "
                      f"({_seed_note(run['batch_size'], seed.batch_size)})",
        "lr": f"{parameters.get_parameter('lr').comment} ({run['lr']}; "
              f"{_seed_note(run['lr'], seed.lr)})",
    }
    return parameters.parameters_cell(values, comments)


def folder_parameters_source(name, info):
    """The parameters cell of a folder notebook: `data_folder` (and `image_size`) first."""
    table = parameters.folder_table(info["kind"])
    given = {k: v for k, v in info["parameters"].items() if k not in SHORT_RUN_KEYS}
    values = parameters.defaults(table=table, **given, model_spec=seed_spec(info["seed"]))
    unused = "not used here (the public datasets' folders); see data_folder"
    comments = {"data_dir": unused, "dataset_folder": unused, "allow_partial": unused,
                "model_name": "None: model_spec's layers; or a seed model's, fitted to your "
                              "classes"}
    return parameters.parameters_cell(values, comments, table=table)


def _folder_cells(name, info):
    """The Data section of a folder notebook (after its heading)."""
    kind = info["kind"]
    size = ', image_size=derived["image_size"]' if kind == "images" else ""
    cells = [
        _code(f"""
from ai8x_nb.models.adapt import starting_spec

dataset = datasets.load(DATASET, data_folder=derived["data_folder"]{size},
                        seed=seed, limit=sample_limit)
print(dataset)
print(datasets.describe(dataset))  # classes, counts per split, warnings
# The starting model: model_name's layers (else model_spec's), one output per class.
model_spec = starting_spec("{kind}", dataset.num_classes, model_name=derived["model_name"],
                           model_spec=model_spec)
derived["model_name"] = None  # built from its layers: the editor below shows them
"""),
    ]
    if kind == "images":
        cells.append(_code("plots.sample_grid(dataset.train, dataset.class_names, n=16)"))
    else:
        cells += [
            _md("""
A spectrogram of one training clip per word (time on x, frequency on y, brighter is louder),
then one clip as the accelerator reads it: 128 rows of 128 consecutive samples.
"""),
            _code("plots.spectrograms(dataset.train, dataset.class_names)"),
            _code("""
plots.kws_layout(dataset.train.x[0],
                 title=f"'{dataset.class_names[dataset.train.y[0]]}' as the device reads it")
"""),
        ]
    return cells


def _model_name_note(name):
    """What `model_name` can be in the notebook of dataset `name` (its registry models)."""
    if name in FOLDER_NOTEBOOKS:
        return (': here a seed with a layer spec (e.g. `"cifar10"`): its layers, fitted to your '
                'classes, go to the editor.')
    others = [info for info in MODELS.values() if info.dataset == name and info.name != name]
    if not others:
        return "."
    listed = ", ".join(f'`"{info.name}"` ({info.description})' for info in others)
    first = others[0]
    device = f" -p device {first.device}" if first.device == "MAX78002" else ""
    return (f": here {listed}; e.g. `ai8x-nb run {name} -p model_name {first.name}{device}`.")


def build_notebook(name):
    """Return the notebook of one dataset."""
    info = DATASETS.get(name) or FOLDER_NOTEBOOKS[name]
    folder = name in FOLDER_NOTEBOOKS
    cells = [
        _md(f"""
# {info["title"]}

**Author:** ai8x-nb contributors<br>
**Date created:** {DATE_CREATED}<br>
**Last modified:** {DATE_CREATED}<br>
**Description:** {info["description"]}

{DEVICE_TEXT} {info["model"]} {FLOW_TEXT}
"""),
        _md(f"""
## Parameters

Edit the values below, or run the notebook headless with other values:
`ai8x-nb run {name} -p epochs 100 -p fast False` (papermill injects them after this cell).
`fast=True` keeps only the first `limit` samples of each split (4096 by default) so the whole
notebook runs in about a minute; set `fast=False` for a real training run. A full run uses
the "fast" recipe ({_fast_recipe_text(name)}):
`ai8x-nb run {name} -p fast False -p recipe fast -p epochs {FULL_EPOCHS.get(name, 20)} -p qat_policy default`
(README, "Accuracy recipes", lists what each dataset reaches). `batch_size`, `lr` and
`schedule` are None: the recipe's values, so a recipe applies whole; the "seed" recipe has
none, so this notebook's short-run values are used (the Train cell prints what it used and
where each value came from). `model_spec` describes the model one layer per line, or names a
`.spec.json` file saved by the layer editor.
"""),
        _code((folder_parameters_source if folder else parameters_source)(name, info),
              tags=["parameters"]),
        _md("""
## Setup

Imports, and a check of the parameters: a wrong value stops here with a message naming it.
"""),
        _code(f"""
%matplotlib inline
import ai8x_nb

ai8x_nb.setup_notebook()  # before Keras: quiet TensorFlow's start-up lines, show our messages

from pathlib import Path

import keras

from ai8x_nb import datasets, notebooks, parameters, plots
from ai8x_nb.check import check_model
from ai8x_nb.evaluate import evaluate_quantized, predict_samples
from ai8x_nb.export import export_model
from ai8x_nb.models import get_model_for
from ai8x_nb.spec import spec_to_model
from ai8x_nb.training import train
from ai8x_nb.widgets import LayerEditor, LivePlot
from ai8x_nb.zoo.finetune import load_for_fine_tuning

DATASET = "{name}"
SHORT_RUN = {short_run(info)!r}  # what None means when the recipe has no value
derived = parameters.check_parameters(globals())  # the parameters cell's values, checked
device = derived["device"]
model_spec = derived["model_spec"]
sample_limit = derived["limit"]
print(f"{{DATASET}} on {{device}}: {{epochs}} epoch(s), samples per split: {{sample_limit or 'all'}}")
"""),
        _md(f"""
## Data

{info["data"]} The device reads signed 8-bit inputs: pixels are stored as
`int8 = uint8 - 128`, and training divides by 128 (`datasets.to_float`).
"""),
        _code("""
dataset = datasets.load(DATASET, derived["data_dir"], folder=dataset_folder,
                        allow_partial=allow_partial, seed=seed, limit=sample_limit)
print(dataset)
"""),
    ]
    if folder:
        cells[-1:] = _folder_cells(name, info)  # its own loading, counts and views
        cells.insert(2, _md(f"""
**Your data:** set `data_folder` to your folder, e.g.
`ai8x-nb run {name} -p data_folder {'shapes' if info['kind'] == 'images' else 'words'}`
(README, "Your own data"); the same folder trains from the command line with
`ai8x-nb train --data-folder PATH`.
"""))
    elif name == "kws20":
        cells += [
            _code("plots.kws_waveforms(dataset.train, dataset.class_names, n=3)"),
            _md("""
The accelerator does not see a waveform but a 128x128 layout: row r holds samples
128r to 128r+127, each row is one time step of the first Conv1D layer and each column one of
its 128 input channels.
"""),
            _code("""
plots.kws_layout(dataset.train.x[0],
                 title=f"'{dataset.class_names[dataset.train.y[0]]}' as the device reads it")
"""),
        ]
    else:
        cells.append(_code("plots.sample_grid(dataset.train, dataset.class_names, n=16)"))
    cells += [
        _md(f"""
## Model

The layer editor shows the model of `model_spec`, one row per layer, with its output shape and
parameters. Every field is checked against the chosen device as you type (an unsupported
kernel size or too many channels shows the error in red in its row), and the bars show how much
of the device's layers, weight, bias and data memory the model uses. The check below also gives
each layer's cycles and operations and the inference latency at the 50 MHz accelerator clock,
as the synthesis tool estimates them (on the MAX78002 labelled an estimate). Headless runs show a
static picture of the same table, and a saved notebook reopened without its kernel shows the
editor's last state as a picture.

The next cell builds the model the editor shows, for the device chosen in the editor: your edits
and the device reach the check, the training and the export (a row in red stops it with one
line naming the row). **Add layer** inserts a convolution or pooling layer before the
classifier head (Flatten/Dense), a dense or dropout layer before the last row. **Save spec**
writes them to `<dataset>.spec.json` beside the notebook; set `model_spec = "<dataset>.spec.json"`
in the parameters cell (or `ai8x-nb run <dataset> -p model_spec <dataset>.spec.json`) and a batch
run reproduces your model.

`model_name` builds a model of the registry by name instead{_model_name_note(name)} A branching network
(residual `Add` blocks) is not a chain of rows, so the editor is not shown for it; the check
below still shows its layers, processors and memory.

`init_from` starts from a trained model instead (a `.keras` file: one of the vendor's networks
written by `ai8x-nb import CHECKPOINT YAML --out FILE`, or a run's `qat_best.keras`): its layers
keep their trained weights, bit widths and output shifts, and a new classifier head is made
when this dataset has another number of classes (README, "The vendor's trained networks").
"""),
        _code("""
model_name = derived["model_name"]
init_from = derived["init_from"]
editor = None
if init_from is not None:
    print(f"fine-tuning {init_from} (its trained layers; no layer editor)")
elif model_name is None:
    editor = LayerEditor(model_spec, dataset.input_shape, dataset.num_classes, device=device,
                         save_path=f"{DATASET}.spec.json")
else:
    print(f"model {model_name!r} from the registry (built by name; no layer editor)")
editor
"""),
        _code("""
model = None  # no stale model when this cell stops
if editor is not None:
    editor.raise_if_invalid()  # a row in red: one line naming it
    device = editor.device  # the editor's device: the check, training and export follow it
    model_spec = editor.spec  # what the editor shows now: your edits reach the training below


def make_model():  # a fresh, untrained model of this cell's choices (Train starts from one)
    keras.utils.set_random_seed(seed)
    if init_from is not None:
        return load_for_fine_tuning(init_from, dataset.num_classes, device=device)
    if editor is None:
        return get_model_for(model_name, DATASET, device=device)
    return spec_to_model(model_spec, dataset.input_shape, dataset.num_classes, device=device,
                         name=DATASET)


model = make_model()
report = check_model(model, device)
print(report)
report.raise_if_errors()
if editor is None:  # the editor shows these bars already
    display(plots.memory_budget(report))
"""),
        _md("""
## Train

`train` writes a run folder under `logs/` (config, checkpoints, history, results on the test
split), beside the notebook that runs (`ai8x-nb run` runs a copy in `runs/`, so there).
The curves update after every epoch; the dotted line marks where quantization-aware
training starts (BatchNorm folded, weights fake-quantized to `weight_bits`). The cell trains a
fresh model of the Model cell's choices, so running it again starts over just as the first
time (to change the model, edit and run the Model cell first).
"""),
        _code("""
from ai8x_nb.training.notebook_settings import notebook_settings, settings_text

model = make_model()  # fresh: a re-run trains from the start, not the last run's QAT model
chosen = notebook_settings(recipe, DATASET, SHORT_RUN, batch_size=batch_size, lr=lr,
                           schedule=schedule)
print(f"training {model.name} on {device}: "
      + settings_text(chosen, recipe=recipe, optimizer=optimizer, epochs=epochs))
live = LivePlot(title=f"{DATASET}: training")
result = train(
    model, dataset, epochs=epochs, optimizer=optimizer, recipe=recipe,
    **{key: value for key, (value, _) in chosen.items()},
    qat_policy=derived["qat_policy"], out="logs", seed=seed, device=device,
    callbacks=[live], distribute=distribute, init_from=init_from,
    dataset_kwargs={"data_dir": derived["data_dir"], "folder": dataset_folder,
                    "allow_partial": allow_partial, "limit": sample_limit, "seed": seed})
"""),
        _md(f"""
## Evaluate

Accuracy on each split{info.get("train_split_note", "")} and per class, the
confusion matrix of the run's best model on the test split (rows: true class), and test
predictions titled "predicted (true)", mistakes framed in red.
"""),
        _code("""
import numpy as np

for split in (dataset.train, dataset.valid, dataset.test):
    predicted = predict_samples(result.model, split.x).argmax(-1)
    print(f"{split.name:<6} accuracy {100 * np.mean(predicted == split.y):6.2f} % "
          f"({len(split.y)} samples)")
matrix = np.asarray(result.confusion_matrix)
per_class = np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
print("test accuracy per class:")
print("  " + ", ".join(f"{n} {100 * a:.0f} %" for n, a in zip(dataset.class_names, per_class)))
plots.confusion_matrix(result.confusion_matrix, dataset.class_names)
"""),
        _code("""
shown = dataset.test.head(64)
logits = predict_samples(result.model, shown.x)
plots.prediction_grid(shown.x, shown.y, logits, dataset.class_names, n=24)
"""),
        _md("""
## Quantize

The same test split three ways: the float weights, the fake-quantized Keras model (what QAT
trained), and the integer simulation of the converted model (what the device computes, with
8-bit weights, 8-bit biases and power-of-two output shifts).
"""),
        _code("""
qreport = evaluate_quantized(result.model, dataset)
print(qreport)
plots.quant_comparison(qreport)
"""),
        _md("""
## Export

One folder with the synthesis package (`<name>-q.pth.tar` with the integer weights,
`<name>.yaml`, `sampledata.npy` and our known answer `sampleoutput.npy`, the `ai8xize.py`
command), float ONNX, SavedModel and TFLite (float and full int8), listed in `manifest.json`.
"""),
        _code("""
manifest = export_model(result.model, Path(export_dir) / DATASET, dataset=dataset,
                        name=DATASET, device=device, run_dir=result.run_dir.path)
print(f"export folder: {Path(manifest.folder).resolve()}")
for role, path in manifest.artifacts.items():
    print(f"  {role:<18} {path}")
for target, reason in manifest.skipped.items():
    print(f"  skipped {target}: {reason}")
print("accuracy at export: "
      + ", ".join(f"{k} {100 * v:.2f} %" for k, v in manifest.accuracy.items()))
"""),
        _md("""
## Synthesize

The vendor's synthesis tool `ai8xize.py` turns the export into the C project that runs on the
chip, and computes its own known answer for `sampledata.npy`: the values the C code checks on
the device. `synthesize` runs it and compares that answer with our simulator's, value by
value: PASS means the chip will compute what this notebook evaluated (FAIL stops the notebook
here, with the tool's own error and a diagnosis). It needs ADI's
`ai8x-synthesis` with its Python environment, named by `AI8X_SYNTHESIS_DIR` and
`AI8X_SYNTHESIS_PYTHON`; without them this cell says how to set it up and moves on.
When `MAXIM_PATH` names ADI's MSDK and `arm-none-eabi-gcc` is on PATH, the C project is also
compiled and linked: the firmware line shows its flash and RAM use and the compiler's warnings.
`tool_options` passes options to the tool (`--energy`, `--riscv`, `--boost 2.5`, ...; the
manifest records the command; `--fifo` is added by itself when the model has streaming layers). When the answers differ, a trace compares every
layer's output with the tool's log and names the first differing layer, channel and position.
"""),
        _code("""
from ai8x_nb.errors import SynthesisError
from ai8x_nb.synthesis import find_tool, firmware_skip_reason, synthesize

try:
    find_tool()
except SynthesisError as err:
    synthesis = None
    print(f"Synthesis skipped: {err}")
else:
    no_build = firmware_skip_reason(manifest.device)  # None when the compiler and MSDK are there
    tool_options = []  # passed to ai8xize.py as they are, e.g. ["--energy"]
    synthesis = synthesize(manifest.folder, build=no_build is None, extra_args=tool_options)
    print(synthesis.summary())
    if no_build:
        print(f"Firmware build skipped: {no_build}")
    if synthesis.mismatches:  # which layer first differs: every layer against the tool's log
        print(synthesize(manifest.folder, extra_args=tool_options, trace=True).trace.summary())
    if not synthesis.ok:  # the chip would not compute what this notebook evaluated
        raise SynthesisError(f"Synthesis FAILED for {DATASET}; see the lines above.")
"""),
        _md("""
## Summary

What each embedded target gets from this one trained model: the MAX78000 (integer simulation,
and the firmware's flash and RAM when it was built) and the ESP32-S3 (the int8 TFLite model as
TensorFlow Lite Micro runs it: accuracy, model size, arena). Then the numbers a batch run
(`ai8x-nb run all`) collects into its summary table.
"""),
        _code("""
from ai8x_nb.export import Manifest
from ai8x_nb.export.targets import targets_text

final = Manifest.load(manifest.folder)  # with the synthesis and firmware records
print(targets_text(final))
micro = final.details.get("tflite_micro") or {}
firmware = final.firmware or {}
summary = notebooks.record_summary({
    "dataset": DATASET,
    "model": model.name,
    "device": device,
    "epochs": epochs,
    "samples_per_split": sample_limit,
    "test_accuracy": result.test_accuracy,
    "float_accuracy": qreport.float_accuracy,
    "fake_quant_accuracy": qreport.fake_quant_accuracy,
    "integer_accuracy": qreport.integer_accuracy,
    "tflite_int8_accuracy": final.accuracy.get("tflite_int8"),
    "tflite_model_bytes": micro.get("model_bytes"),
    "tflite_arena_bytes": micro.get("arena_bytes"),
    "firmware_flash_bytes": firmware.get("flash_bytes"),
    "firmware_ram_bytes": firmware.get("ram_bytes"),
    "latency_cycles": report.totals["latency_cycles"],
    "latency_us": report.totals["latency_us"],
    "latency_estimate": report.totals["latency_estimate"],
    "run_dir": str(Path(result.run_dir.path).resolve()),
    "export_dir": str(Path(manifest.folder).resolve()),
    "synthesis": synthesis.verdict if synthesis is not None else "not configured",
})
"""),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name}-{i:02d}"  # stable ids: regenerating gives no spurious diff
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=[*DATASETS, *FOLDER_NOTEBOOKS],
                        help="notebooks to write")
    parser.add_argument("--out", default=str(REPO / "notebooks"), help="output folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        nb = build_notebook(name)
        nbformat.validate(nb)
        path = out / f"{name}.ipynb"
        nbformat.write(nb, str(path))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
