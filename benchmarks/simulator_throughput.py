"""Integer simulator speed: the seed MNIST model on the 10,000 MNIST test images.

Prints the time of `simulate` and its ratio to float Keras `predict` of the same model on the
same 10,000 images, measured in the same run (best of --repeat runs each, the two alternating,
so a busy machine skews both alike), and the CPU time of each (all threads), which other
processes' load disturbs less. Every `simulate` call traces its TensorFlow graph anew, so each
timed run includes that. Target: at most 1.5x predict. Weights are random (shifts and saturation
like a trained model's do not change the work done) unless --train-epochs > 0.

Usage:
    python benchmarks/simulator_throughput.py [--data DIR] [--batch-size 256] [--train-epochs 0]
        [--repeat 3]
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
    parser.add_argument("--data", default=None, help="data dir (default: AI8X_NB_DATA or ../shared/data)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--train-epochs", type=int, default=0,
                        help="train briefly first (float epochs on 6,000 images, then 1 QAT epoch)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs of each; the best counts (default 3)")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from ai8x_nb.datasets import load
    from ai8x_nb.models import get_model
    from ai8x_nb.quantize import QATCallback, convert, enable_qat
    from ai8x_nb.simulate import simulate
    from support import SHARED_DATA

    ds = load("mnist", args.data or SHARED_DATA, download=False)
    x_test = ds.test.x.reshape(-1, 28, 28)
    model = get_model("mnist")
    if args.train_epochs:
        model.compile(optimizer="adam", metrics=["accuracy"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(ds.train.x[:6000].reshape(-1, 28, 28) / 128.0, ds.train.y[:6000], batch_size=256,
                  epochs=args.train_epochs + 1, verbose=0,
                  callbacks=[QATCallback({"start_epoch": args.train_epochs})])
    else:
        enable_qat(model)
    qmodel = convert(model)
    simulate(qmodel, x_test[:64])  # warm-up
    x_float = x_test / 128.0
    model.predict(x_float[:512], batch_size=args.batch_size, verbose=0)  # warm-up (tracing)

    def timed(run):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = run()
        return (time.perf_counter() - start, time.process_time() - cpu_start), result

    # Alternate the two, so a change in the machine's load falls on both alike.
    sim_times, predict_times = [], []
    for _ in range(max(1, args.repeat)):
        seconds, out = timed(lambda: simulate(qmodel, x_test, batch_size=args.batch_size))
        sim_times.append(seconds)
        predict_times.append(timed(lambda: model.predict(x_float, batch_size=args.batch_size,
                                                         verbose=0))[0])
    seconds, predict_seconds = min(t[0] for t in sim_times), min(t[0] for t in predict_times)
    cpu, predict_cpu = min(t[1] for t in sim_times), min(t[1] for t in predict_times)
    accuracy = float(np.mean(out.argmax(-1) == ds.test.y))
    ratio = seconds / predict_seconds
    print(f"simulate: {len(x_test)} MNIST test images in {seconds:.2f} s "
          f"({len(x_test) / seconds:.0f} images/s, batch {args.batch_size}); "
          f"integer accuracy {100 * accuracy:.2f} %")
    print(f"float Keras predict, same model and images: {predict_seconds:.2f} s; "
          f"simulate / predict = {ratio:.2f}x (target <= 1.5x)")
    print(f"CPU time (all threads; less sensitive to other processes' load): simulate "
          f"{cpu:.2f} s, predict {predict_cpu:.2f} s; simulate / predict = {cpu / predict_cpu:.2f}x")
    pairs = ", ".join(f"{a[0]:.2f}/{b[0]:.2f}" for a, b in zip(sim_times, predict_times))
    print(f"each run, simulate/predict seconds: {pairs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
