"""Accuracy through the whole quantization flow: float training, QAT, integer simulation.

Trains a seed model with plain `keras.Model.fit` (float epochs, then QAT epochs switched on
by `QATCallback`) and reports the test accuracy of the float view, the fake-quantized model
and the bit-exact integer simulation (`evaluate_quantized`). Target for MNIST: integer within
0.3 percentage points of float.

Usage:
    python benchmarks/qat_accuracy.py --dataset mnist --epochs 2 --qat-epochs 1
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=("mnist", "fashionmnist"))
    parser.add_argument("--epochs", type=int, default=2, help="float epochs")
    parser.add_argument("--qat-epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-bits", type=int, default=8)
    parser.add_argument("--data", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    from ai8x_nb.datasets import load, to_float
    from ai8x_nb.evaluate import evaluate_quantized
    from ai8x_nb.quantize import QATCallback
    from ai8x_nb.models import get_model
    from support import SHARED_DATA

    keras.utils.set_random_seed(args.seed)
    ds = load(args.dataset, args.data or SHARED_DATA, download=False)
    model = get_model(args.dataset)  # the dataset's seed model
    shape = (-1,) + tuple(model.inputs[0].shape[1:])
    x_train, x_valid = to_float(ds.train.x).reshape(shape), to_float(ds.valid.x).reshape(shape)
    model.compile(optimizer=keras.optimizers.Adam(args.lr), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat = QATCallback({"start_epoch": args.epochs, "weight_bits": args.weight_bits})
    start = time.perf_counter()
    model.fit(x_train, ds.train.y, batch_size=args.batch_size, epochs=args.epochs + args.qat_epochs,
              validation_data=(x_valid, ds.valid.y), callbacks=[qat], verbose=2)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = evaluate_quantized(model, ds, split="test", batch_size=256)
    eval_seconds = time.perf_counter() - start
    print(report)
    gap = 100 * (report.float_accuracy - report.integer_accuracy)
    print(f"\n{args.dataset}: {args.epochs} float + {args.qat_epochs} QAT epochs "
          f"({len(ds.train)} train images) in {train_seconds:.0f} s; evaluation {eval_seconds:.0f} s")
    print(f"float - integer = {gap:.2f} pp (target <= 0.3 pp)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
