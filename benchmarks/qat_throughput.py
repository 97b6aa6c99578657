"""Training speed of the seed MNIST model: float phase vs QAT (fake quantization) phase.

Both phases run in the same process on the same data; the QAT phase is switched on by
`QATCallback` exactly as in a real run. Target: QAT images/s >= 0.9 x float images/s by CPU
time (median of the runs; each run prints its own ratios).

Usage:
    python benchmarks/qat_throughput.py [--images 12000] [--epochs 2] [--batch-size 256] [--runs 3]
    python benchmarks/qat_throughput.py --epochs 3 --images 8000     # the issue's setting
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
    parser.add_argument("--images", type=int, default=12000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2,
                        help="epochs per phase (the first epoch of each phase is a warm-up)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3,
                        help="independent runs (fresh model each); the median ratio is reported")
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from ai8x_nb.datasets import load
    from ai8x_nb.models import get_model
    from ai8x_nb.quantize import QATCallback
    from support import SHARED_DATA

    ds = load("mnist", args.data or SHARED_DATA, download=False)
    x = ds.train.x[:args.images].reshape(-1, 28, 28).astype("float32") / 128.0
    y = ds.train.y[:args.images]

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.cpu_seconds = {}, {}

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds[epoch] = time.perf_counter() - self._start
            self.cpu_seconds[epoch] = time.process_time() - self._cpu

    def rate(epochs, seconds):
        return len(x) * len(epochs) / sum(seconds[e] for e in epochs)

    float_epochs = list(range(1, args.epochs)) or [0]
    qat_epochs = list(range(args.epochs + 1, 2 * args.epochs)) or [args.epochs]
    ratios = {"wall clock": [], "CPU time": []}
    for run in range(args.runs):
        keras.utils.set_random_seed(run)
        model = get_model("mnist")
        model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        timer = Timer()
        # QATCallback first, so the Timer's epoch clock starts after the switch (re-tracing
        # is counted in the warm-up epoch of the QAT phase either way).
        qat = QATCallback({"start_epoch": args.epochs, "weight_bits": 8})
        model.fit(x, y, batch_size=args.batch_size, epochs=2 * args.epochs, verbose=0,
                  callbacks=[qat, timer])
        for label, seconds in (("wall clock", timer.seconds), ("CPU time", timer.cpu_seconds)):
            float_rate, qat_rate = rate(float_epochs, seconds), rate(qat_epochs, seconds)
            ratios[label].append(qat_rate / float_rate)
            print(f"run {run + 1}/{args.runs} {label}: float phase {float_rate:.0f} images/s "
                  f"(epochs {float_epochs}), QAT phase {qat_rate:.0f} images/s (epochs "
                  f"{qat_epochs}); ratio QAT / float {qat_rate / float_rate:.2f}")
        print(f"run {run + 1}/{args.runs}: QAT switched at epoch {qat.switched_epoch}; wall "
              f"seconds per epoch:", {e: round(s, 2) for e, s in timer.seconds.items()},
              flush=True)
    for label, values in ratios.items():
        print(f"{label}: ratio QAT / float per run "
              f"{', '.join(f'{v:.3f}' for v in values)}; median {np.median(values):.3f} "
              f"(target >= 0.9 by CPU time)")
    print("(CPU time is per process, the fairer ratio when other jobs share the cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
