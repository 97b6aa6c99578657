"""One trained model, both embedded targets: MAX78000 and ESP32-S3 figures per seed model.

Trains each seed model through the normal pipeline (recipe "fast", QAT), exports it
(`export_run`: synthesis package and int8 TFLite), runs the vendor's synthesis tool with the
firmware build (`synthesize(..., build=True)`: needs AI8X_SYNTHESIS_DIR / _PYTHON, MAXIM_PATH
and arm-none-eabi-gcc), then prints one line per model: the MAX78000 integer-simulated test
accuracy, the tool's verdict and the firmware's flash / RAM; the int8 TFLite accuracy, model
bytes and TFLite Micro's arena. Datasets without an offline copy (CIFAR-100, Rock-Paper-
Scissors here) are exported untrained on random samples: memory figures only.

Usage:
    python benchmarks/targets.py mnist fashionmnist cifar10 cifar100 rock --epochs 3
    python benchmarks/targets.py kws20 --folder kws-espeak-large --epochs 20
(kws20 reads Speech Commands unless --folder names a keyword folder under the data folder; a
dataset that is not there gives a "not run" row naming the missing files.)
"""

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

OFFLINE = ("mnist", "fashionmnist", "cifar10", "kws20")
"""Datasets with a real copy in the CI data folder; the others get random samples."""


def _random_dataset(name, model, n=64, seed=0):
    import numpy as np

    from ai8x_nb.datasets import Dataset, Split

    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in model.inputs[0].shape[1:])
    classes = int(model.outputs[0].shape[-1])

    def split(split_name):
        x = rng.integers(-128, 128, size=(n,) + shape).astype(np.int8)
        return Split(split_name, x, rng.integers(0, classes, size=n).astype(np.int64))

    return Dataset(name, split("train"), split("valid"), split("test"),
                   [str(i) for i in range(classes)])


def _export(name, args, out):
    from ai8x_nb.export import export_model, export_run
    from ai8x_nb.models import get_model
    from ai8x_nb.quantize import enable_qat
    from ai8x_nb.training import train

    if name not in OFFLINE:
        model = get_model(name)
        enable_qat(model)
        return export_model(model, out / name, dataset=_random_dataset(name, model),
                            targets=("synthesis", "tflite_int8")), "untrained, random data"
    kwargs = {"allow_partial": True, "limit": args.limit}
    if args.folder and name == "kws20":
        kwargs["folder"] = args.folder
    result = train(dataset_or_name=name, epochs=args.epochs, recipe="fast",
                   qat_policy="default", dataset_kwargs=kwargs, out=str(out / "logs"),
                   verbose=0, name=name)
    manifest = export_run(result.run_dir.path, out / name,
                          targets=("synthesis", "tflite_int8"))
    return manifest, f"{args.epochs} epochs, {manifest.evaluated_samples} test samples"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", help="seed model / dataset names")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=4096,
                        help="at most N samples per split (default 4096)")
    parser.add_argument("--folder", help="kws20's folder under the data folder")
    parser.add_argument("--out", help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from ai8x_nb import console  # noqa: F401  quiet TensorFlow start-up
    from ai8x_nb.errors import DatasetError
    from ai8x_nb.synthesis import synthesize

    out = Path(args.out or tempfile.mkdtemp(prefix="ai8x-nb-targets-"))
    print("| model | data | MAX78000 integer | ai8xize.py | firmware flash | firmware RAM | "
          "TFLite int8 | model bytes | arena bytes | TFLite Micro |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        start = time.perf_counter()
        try:
            manifest, data = _export(name, args, out)
        except DatasetError as err:  # e.g. kws20 without Speech Commands: the others still run
            print(f"| {name} | not run: {err} |", flush=True)
            continue
        result = synthesize(manifest.folder, build=True)
        firmware = result.firmware.to_dict() if result.firmware else {}
        micro = manifest.details.get("tflite_micro", {})

        def pct(key):
            value = manifest.accuracy.get(key)
            return "n/a" if value is None or name not in OFFLINE else f"{100 * value:.2f} %"

        print(f"| {name} | {data} | {pct('integer_simulation')} | "
              f"{'PASS' if result.ok else 'FAIL'} | {firmware.get('flash_bytes', 0):,} | "
              f"{firmware.get('ram_bytes', 0):,} | {pct('tflite_int8')} | "
              f"{micro.get('model_bytes', 0):,} | {micro.get('arena_bytes', 0):,} | "
              f"{'loads' if micro.get('loads') else 'FAILS'}, "
              f"{micro.get('outputs_equal_litert')}/{micro.get('checked_samples')} equal "
              f"({time.perf_counter() - start:.0f} s) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
