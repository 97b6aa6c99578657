"""Write notebooks/zoo.ipynb: a vendor network imported, inspected, synthesized, fine-tuned.

The starting point for a user who wants one of Analog Devices' trained networks: pick it by
name, import it bit-exactly (`ai8x_nb.zoo`), see its layers and memory, its prediction on the
vendor's own sample, synthesize it, and optionally continue training it on your data. Run it
after changing the template and commit the notebook (outputs cleared, tags kept):

    python tools/make_zoo_notebook.py
"""

import argparse
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_notebooks import REPO, _code, _md  # noqa: E402  the dataset notebooks' cell makers

DATE_CREATED = "2026/12/07"


def _cells():
    """The notebook's cells, made anew for every notebook (cells are mutable)."""
    return [
        _md(f"""
# The vendor's trained networks in the workbench

**Author:** ai8x-nb contributors<br>
**Date created:** {DATE_CREATED}<br>
**Last modified:** {DATE_CREATED}<br>
**Description:** Import one of Analog Devices' trained MAX78000 networks, check it, run it on
the vendor's sample, synthesize it, and fine-tune it on your data.

Analog Devices' `ai8x-synthesis` repository ships trained networks (`trained/*-q.pth.tar`)
with their network descriptions (`networks/*.yaml`) and a sample input each. The import reads
the checkpoint without PyTorch and without running anything in it, and builds a Keras model of
`ai8x_nb.layers` with the trained integer weights, bit widths and output shifts: our simulator
then computes exactly the tool's known answer, and the model can be checked, exported,
synthesized and trained like any other.
"""),
        _md("""
## Parameters

`network` is one of the names listed under Setup. `fine_tune_epochs > 0` continues training
the imported network on `fine_tune_dataset` (its layers keep their bits and output shifts; a
new classifier head is made when the class count differs), then exports and synthesizes it.
Headless: `ai8x-nb run zoo -p network mnist` or `ai8x-nb run zoo -p fine_tune_epochs 10`.
The vendor files are read from `synthesis_dir`, else `$AI8X_SYNTHESIS_DIR`.
"""),
        _code("""
network = "kws20_v3"  # a vendor network (see the table under Setup)
device = "MAX78000"  # MAX78000 or MAX78002
synthesis_dir = None  # the ai8x-synthesis folder; None: $AI8X_SYNTHESIS_DIR
fine_tune_epochs = 0  # 0: no fine-tuning; e.g. 10
fine_tune_dataset = "kws20"  # the dataset to fine-tune on
dataset_folder = "kws-espeak-large"  # the dataset's folder under the data folder (None: default)
data_dir = None  # None: $AI8X_NB_DATA, else ./data
lr = 0.0003  # fine-tuning learning rate (the network is already trained: keep it small)
out_dir = "."  # logs/ and export/ go here
""", tags=["parameters"]),
        _md("""
## Setup
"""),
        _code("""
%matplotlib inline
import ai8x_nb

ai8x_nb.setup_notebook()  # before Keras: quiet TensorFlow's start-up lines

from pathlib import Path

import numpy as np

from ai8x_nb import notebooks
from ai8x_nb.check import check_model
from ai8x_nb.export import export_model
from ai8x_nb.quantize import convert
from ai8x_nb.simulate import simulate
from ai8x_nb.zoo.catalog import VENDOR_NETWORKS, import_vendor, vendor_network, vendor_sample

for entry in VENDOR_NETWORKS.values():
    status = "imports" if entry.importable else f"not yet: needs {entry.missing}"
    print(f"{entry.name:<18} {entry.yaml:<34} {status}")
"""),
        _md("""
## Import

The checkpoint's layers, in the order the tool assigns them to the YAML's layers, become one
`ai8x_nb` layer each, named as in the checkpoint. The check shows what the chip needs: one row
per hardware layer with its processors, passes and memory, against the device's budget.
"""),
        _code("""
entry = vendor_network(network)
model = import_vendor(network, device=device, synthesis_dir=synthesis_dir)
print(f"{model.name}: {len(model.layers)} Keras layers, {model.count_params():,} parameters, "
      f"input {tuple(model.inputs[0].shape[1:])}")
report = check_model(model, device)
print(report)
"""),
        _md("""
## The vendor's sample

The sample the vendor's tool uses for its known answer, through our integer simulator: the
values the C code on the chip checks (channel-first, as the tool prints them).
"""),
        _code("""
sample = vendor_sample(network, synthesis_dir=synthesis_dir)
outputs = simulate(convert(model), sample[None].astype(np.int64))
if isinstance(outputs, list):  # several outputs (a detector's heads): one array each
    for name, values in zip(model.output_names, outputs):
        print(f"{name:<28} {tuple(values.shape[1:])} [{values.min()}, {values.max()}]")
    outputs = outputs[-1]
scores = outputs.reshape(-1)
top = np.argsort(scores)[::-1][:3]
names = entry.classes or [str(i) for i in range(len(scores))]
for rank, index in enumerate(top, 1):
    print(f"{rank}. {names[index]:<10} {int(scores[index]):>8}")
"""),
        _md("""
## Synthesize

The imported network exported with the vendor's sample as `sampledata.npy`, then through the
vendor's tool: PASS means the tool accepts our export and computes our known answer. It needs
`AI8X_SYNTHESIS_DIR` and `AI8X_SYNTHESIS_PYTHON`; without them this cell says so and moves on.
"""),
        _code("""
from ai8x_nb.errors import SynthesisError
from ai8x_nb.synthesis import find_tool, synthesize

export_dir = Path(out_dir) / "export" / f"zoo-{network}"
manifest = export_model(model, export_dir, targets=("synthesis",), sample=sample, device=device)
try:
    find_tool()
except SynthesisError as err:
    synthesis = None
    print(f"Synthesis skipped: {err}")
else:
    synthesis = synthesize(manifest.folder)
    print(synthesis.summary())
    if not synthesis.ok:
        raise SynthesisError(f"Synthesis FAILED for {network}; see the lines above.")
"""),
        _md("""
## Fine-tune

With `fine_tune_epochs > 0`: the imported network continues training on your data with
quantization-aware training at its own bit widths; accuracy before and after on the test
split, then the fine-tuned network is exported and synthesized.
"""),
        _code("""
from ai8x_nb import datasets
from ai8x_nb.evaluate import evaluate_quantized
from ai8x_nb.training import train
from ai8x_nb.zoo.finetune import load_for_fine_tuning

tuned = None
if fine_tune_epochs > 0:
    dataset = datasets.load(fine_tune_dataset, data_dir, folder=dataset_folder)
    start = load_for_fine_tuning(model, dataset.num_classes, device=device)
    before = evaluate_quantized(start, dataset, split="test").integer_accuracy
    # The "fast" recipe (cosine decay, augmentation), without warm-up: the network is trained.
    result = train(start, dataset, epochs=fine_tune_epochs, lr=lr, recipe="fast",
                   warmup_epochs=0, out=str(Path(out_dir) / "logs"), name=f"zoo-{network}",
                   verbose=0)
    tuned = evaluate_quantized(result.model, dataset, split="test").integer_accuracy
    print(f"integer test accuracy on {fine_tune_dataset}: {100 * before:.2f} % imported, "
          f"{100 * tuned:.2f} % after {fine_tune_epochs} epochs")
    manifest = export_model(result.model, Path(out_dir) / "export" / f"zoo-{network}-tuned",
                            dataset=dataset, targets=("synthesis",), device=device)
    if synthesis is not None:
        synthesis = synthesize(manifest.folder)
        print(synthesis.summary())
else:
    print("Fine-tuning skipped (fine_tune_epochs = 0).")
"""),
        _md("""
## Summary
"""),
        _code("""
summary = notebooks.record_summary({
    "network": network,
    "model": model.name,
    "device": device,
    "check_ok": report.ok,
    "prediction": names[int(top[0])],
    "fine_tuned_accuracy": tuned,
    "export_dir": str(Path(manifest.folder).resolve()),
    "synthesis": synthesis.verdict if synthesis is not None else "not configured",
})
"""),
    ]


def build_notebook():
    """The zoo notebook as an `nbformat` notebook (stable cell ids, outputs empty)."""
    nb = nbformat.v4.new_notebook(cells=_cells())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"zoo-{i:02d}"
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "notebooks"), help="output folder")
    args = parser.parse_args(argv)
    nb = build_notebook()
    nbformat.validate(nb)
    path = Path(args.out) / "zoo.ipynb"
    nbformat.write(nb, str(path))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
