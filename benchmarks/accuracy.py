"""Test accuracy of a seed model trained by a recipe: float, fake-quantized and integer-simulated.

Trains through the normal pipeline (`ai8x_nb.training.train`: a run folder with checkpoints,
the packaged "default" QAT policy), then prints one line per run: the float phase's best
checkpoint (`best.keras`), the QAT checkpoint (`qat_best.keras`) fake-quantized and as the
bit-exact integer simulation, all on the official TEST split, with epochs and wall time.
The run folder can then be exported and synthesized (`ai8x-nb export RUN_DIR`).

Targets (issue 14): MNIST >= 99.45 % integer in <= 15 epochs; Fashion-MNIST >= 92.0 % in <= 20
epochs; CIFAR-10 subset: recipe "fast" beats "seed" at the same epochs.

Usage:
    python benchmarks/accuracy.py mnist --recipe fast --epochs 15
    python benchmarks/accuracy.py cifar10 --recipe seed --epochs 30 --allow-partial
    python benchmarks/accuracy.py cifar10 --recipe fast --set augment=false   # ablation
    python benchmarks/accuracy.py kws20 --folder kws-espeak-large --epochs 30
"""

import argparse
import dataclasses
import logging
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _value(text):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return float(text) if any(c in text for c in ".e") else int(text)
    except ValueError:
        return text


def _recipe(name, dataset, overrides):
    """The named recipe, with `field=value` overrides (an ablation variant) of the settings it
    trains `dataset` with."""
    from ai8x_nb.training.plan import recipe_for
    from ai8x_nb.training.recipes import SETTING_FIELDS as fields, get_recipe

    recipe = get_recipe(name)
    changes = {}
    for item in overrides or ():
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set {item!r}: expected FIELD=VALUE with FIELD one of "
                             f"{', '.join(sorted(fields))}.")
        changes[key] = _value(value)
    if changes:
        recipe = dataclasses.replace(recipe_for(recipe, dataset),
                                     description=f"{recipe.description} ({changes})", **changes)
    return recipe, changes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="mnist, fashionmnist, cifar10, ...")
    parser.add_argument("--recipe", default="fast", help="fast (default) or seed")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--set", action="append", metavar="FIELD=VALUE",
                        help="override one recipe field (ablations), e.g. augment=false")
    parser.add_argument("--batch-size", type=int, help="default: the seed model's")
    parser.add_argument("--lr", type=float, help="default: the seed model's")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--limit", type=int, metavar="N",
                        help="at most N samples per split (quick ablations; not for the targets)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="accept a dataset subset (the offline CIFAR-10 copy)")
    parser.add_argument("--data-dir", help="default: $AI8X_NB_DATA, else ./data")
    parser.add_argument("--folder", help="the dataset's folder name under the data folder "
                                         "instead of the default (e.g. kws-espeak-large)")
    parser.add_argument("--out", default="logs/accuracy", help="parent of the run folders")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from ai8x_nb import console  # noqa: F401  quiet TensorFlow start-up
    from ai8x_nb.evaluate import evaluate_quantized
    from ai8x_nb.runs import BEST
    from ai8x_nb.training import train
    from ai8x_nb.training.results import evaluate_split

    recipe, changes = _recipe(args.recipe, args.dataset, args.set)
    kwargs = {k: v for k, v in (("allow_partial", args.allow_partial or None),
                                ("limit", args.limit), ("folder", args.folder))
              if v is not None} or None
    start = time.perf_counter()
    result = train(dataset_or_name=args.dataset, epochs=args.epochs, recipe=recipe,
                   qat_policy="default", batch_size=args.batch_size, lr=args.lr,
                   seed=args.seed, data_dir=args.data_dir, dataset_kwargs=kwargs,
                   out=args.out, verbose=0, name=f"{args.dataset}-{recipe.name}")
    minutes = (time.perf_counter() - start) / 60.0
    run = result.run_dir
    ds = run.load_dataset(data_dir=args.data_dir)
    best = run.load_model(BEST, compile=False)
    float_acc = evaluate_split(best, ds.test, ds.num_classes, 256)["accuracy"]
    report = evaluate_quantized(result.model, ds, split="test")
    qat_start = run.config["qat_policy"]["start_epoch"]
    variant = "".join(f" {k}={v}" for k, v in changes.items())
    print(f"{args.dataset} recipe={recipe.name}{variant} epochs={args.epochs} "
          f"(QAT from epoch {qat_start}): float {100 * float_acc:.2f} % | fake-quant "
          f"{100 * report.fake_quant_accuracy:.2f} % | integer "
          f"{100 * report.integer_accuracy:.2f} % (test, {report.samples} samples) | "
          f"{minutes:.1f} min | {run.path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
