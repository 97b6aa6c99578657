"""Training recipes: names and errors, the QAT start, augmentation (grid, rules, resume), loss."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from ai8x_nb.datasets.augment import Augmentation, augment_batch, augment_seed, augmentation_for
from ai8x_nb.datasets.base import Split
from ai8x_nb.datasets.pipeline import make_epoch_dataset
from ai8x_nb.losses import SparseCrossentropy
from ai8x_nb.training import TrainingError
from ai8x_nb.training.recipes import (RECIPES, DatasetSettings, Recipe, get_recipe,
                                      qat_start_epoch, recipe_config, recipe_from_config)


def test_recipe_names_and_unknown_name():
    assert get_recipe(None).name == "seed" and get_recipe(" FAST ").name == "fast"
    with pytest.raises(TrainingError, match=r"recipe='quick' is invalid: expected one of "
                                            r"'seed', 'fast'\. Use 'fast'"):
        get_recipe("quick")
    with pytest.raises(TrainingError, match="recipe=3 is invalid"):
        get_recipe(3)


def test_recipe_names_come_from_the_parameter_table():
    from ai8x_nb.parameters import RECIPES as NAMES, get_parameter

    assert tuple(RECIPES) == NAMES and get_parameter("recipe").choices == NAMES


def test_seed_recipe_changes_nothing():
    seed = RECIPES["seed"]
    assert (seed.schedule, seed.warmup_epochs, seed.augment, seed.weight_decay,
            seed.label_smoothing, seed.batch_norm, seed.qat_fraction) == (
        None, None, False, 0.0, 0.0, None, None)


@pytest.mark.parametrize("epochs, start", [(15, 12), (20, 16), (3, 2), (1, 0), (10, 8)])
def test_fast_recipe_runs_qat_in_the_last_fifth(epochs, start):
    assert qat_start_epoch(get_recipe("fast"), epochs) == start
    assert qat_start_epoch(get_recipe("seed"), epochs) is None


def test_fast_recipe_settings_per_dataset_where_they_were_measured_to_help():
    fast = get_recipe("fast")
    assert fast.for_dataset("cifar10").batch_norm == "affine"
    assert fast.for_dataset("CIFAR100").batch_norm == "affine"
    assert fast.for_dataset("mnist") == dataclasses.replace(fast, dataset_settings=())
    fashion = fast.for_dataset("fashionmnist")
    assert (fashion.batch_norm, fashion.augment, fashion.qat_fraction) == ("affine", False, 0.5)
    assert (fashion.lr, fashion.weight_decay, fashion.name) == (fast.lr, fast.weight_decay, "fast")
    assert fashion.for_dataset("fashionmnist") == fashion  # applied once, nothing left
    assert qat_start_epoch(fashion, 20) == 10
    assert qat_start_epoch(fast.for_dataset("mnist"), 20) == 16
    assert get_recipe("seed").for_dataset("cifar10").batch_norm is None
    with pytest.raises(TrainingError, match=r"dataset 'mnist' sets \['augmnt'\], which are not "
                                            r"recipe settings; use augment, batch_norm"):
        Recipe("x", "y", dataset_settings=(DatasetSettings.of("MNIST", augmnt=False),))


def test_recipe_config_round_trip_keeps_variants():
    assert recipe_config("fast") == {"recipe": "fast"}
    variant = dataclasses.replace(RECIPES["fast"], augment=False)
    config = json.loads(json.dumps(recipe_config(variant)))  # as config.json stores it
    assert config["recipe"] == "fast" and recipe_from_config(config) == variant
    assert recipe_from_config(config).for_dataset("fashionmnist").qat_fraction == 0.5
    assert recipe_from_config({}) == RECIPES["seed"]


def test_recipe_variants_saved_before_dataset_settings_still_load():
    settings = {f: v for f, v in dataclasses.asdict(RECIPES["fast"]).items()
                if f != "dataset_settings"}
    old = {"recipe": "fast", "recipe_settings": {**settings, "batch_norm": "affine",
                                                 "batch_norm_datasets": ["cifar10"]}}
    recipe = recipe_from_config(old)
    assert recipe.for_dataset("cifar10").batch_norm == "affine"
    assert recipe.for_dataset("fashionmnist").batch_norm is None
    everywhere = recipe_from_config({"recipe": "fast", "recipe_settings": {
        **settings, "batch_norm": "affine", "batch_norm_datasets": []}})
    assert everywhere.for_dataset("mnist").batch_norm == "affine"


def test_augmentation_rules_per_dataset():
    assert not augmentation_for("mnist").flip  # a mirrored 2 is not a 2
    assert augmentation_for("fashionmnist").flip and augmentation_for("cifar10").flip
    kws = augmentation_for("kws20")
    assert kws.time_shift and kws.noise and not kws.flip and not kws.shift
    assert not augmentation_for("unknown").active


def _images(n=64, shape=(28, 28, 1), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(-128, 128, (n,) + shape).astype(np.float32) / 128.0)


def _np_shift_flip(x, dy, dx, flip):
    """Independent model: translate by (dy, dx) with edge pixels repeated, then mirror."""
    h, w = x.shape[:2]
    rows = np.clip(np.arange(h) + dy, 0, h - 1)
    cols = np.clip(np.arange(w) + dx, 0, w - 1)
    y = x[rows][:, cols]
    return y[:, ::-1] if flip else y


def test_image_augmentation_is_a_translation_and_mirror_on_the_grid():
    x = _images()
    out = augment_batch(x, Augmentation(shift=2, flip=True), augment_seed(1, 0, 0)).numpy()
    assert out.shape == x.shape and np.array_equal(np.round(out * 128), out * 128)
    matched = 0
    for a, b in zip(x, out):
        candidates = [_np_shift_flip(a, dy, dx, f) for dy in range(-2, 3)
                      for dx in range(-2, 3) for f in (False, True)]
        matched += any(np.array_equal(c, b) for c in candidates)
    assert matched == len(x)
    assert not np.array_equal(out, x)


def test_audio_augmentation_shifts_in_silence_and_adds_grid_noise():
    x = _images(8, (128, 128))
    aug = Augmentation(time_shift=1600, noise=0.0)
    out = augment_batch(x, aug, augment_seed(3, 1, 2)).numpy().reshape(8, -1)
    flat = x.reshape(8, -1)
    for a, b in zip(flat, out):
        shifts = [s for s in range(-1600, 1601)
                  if np.array_equal(b[max(0, -s):len(b) - max(0, s)], a[max(0, s):len(a) - max(0, -s)])]
        assert shifts  # a pure shift, silence (0) where the clip has no samples
    noisy = augment_batch(x, Augmentation(noise=0.05), augment_seed(3, 1, 2)).numpy()
    assert np.array_equal(np.round(noisy * 128), noisy * 128)
    assert noisy.min() >= -1.0 and noisy.max() <= 127 / 128 and not np.array_equal(noisy, x)


@pytest.mark.parametrize("dataset, shape", [("fashionmnist", (28, 28, 1)), ("kws20", (128, 128))])
def test_augmented_epochs_depend_on_seed_epoch_and_batch_only(dataset, shape):
    """Through the tf.data pipeline (batches of unknown size), images and audio alike."""
    x = np.random.default_rng(0).integers(-128, 128, (40,) + shape).astype(np.int8)
    split = Split("train", x, np.arange(40) % 10)
    aug = augmentation_for(dataset)
    whole = [b.numpy() for b, _ in make_epoch_dataset(split, 16, seed=3, first_epoch=0, epochs=3,
                                                      augmentation=aug)]
    tail = [b.numpy() for b, _ in make_epoch_dataset(split, 16, seed=3, first_epoch=1, epochs=3,
                                                     augmentation=aug)]
    plain = [b.numpy() for b, _ in make_epoch_dataset(split, 16, seed=3, first_epoch=0, epochs=3)]
    assert all(np.array_equal(a, b) for a, b in zip(whole[3:], tail))
    assert not np.array_equal(whole[0], plain[0])
    assert not np.array_equal(whole[0], whole[3][:16])  # epochs differ


def test_label_smoothing_loss_matches_numpy():
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], dtype=np.float32)
    labels = np.array([2, 1])
    eps = 0.1
    target = np.full((2, 3), eps / 3) + (1 - eps) * np.eye(3)[labels]
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = float(np.mean(-(target * logp).sum(1)))
    got = float(SparseCrossentropy(label_smoothing=eps)(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert float(SparseCrossentropy()(labels, logits)) == pytest.approx(float(plain), rel=1e-6)
    restored = SparseCrossentropy.from_config(SparseCrossentropy(0.2).get_config())
    assert restored.label_smoothing == 0.2
    with pytest.raises(ValueError, match=r"label_smoothing=1\.5 must be in \[0, 1\)"):
        SparseCrossentropy(1.5)


def test_recipe_is_a_frozen_record():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECIPES["fast"].augment = False
    assert isinstance(RECIPES["fast"], Recipe)


def test_recipe_defaults_fill_only_the_arguments_not_given():
    from ai8x_nb import models
    from ai8x_nb.training.arguments import check_train_args
    from ai8x_nb.training.plan import resolve_plan

    def plan(dataset="mnist", info=models.get_info("mnist"), **given):
        return resolve_plan(check_train_args(**given), dataset, info, "MAX78000")

    fast = plan(epochs=15, qat_policy="default", recipe="fast")
    assert (fast.batch_size, fast.lr, fast.schedule, fast.warmup_epochs) == (64, 2e-3, "cosine", 1.0)
    assert fast.policy.start_epoch == 12
    fashion = plan("fashionmnist", models.get_info("fashionmnist"), epochs=20,
                   qat_policy="default", recipe="fast")
    assert fashion.policy.start_epoch == 10 and fashion.recipe is RECIPES["fast"]  # as given
    assert fashion.training.augment is False and fashion.training.batch_norm == "affine"
    given = plan(epochs=15, batch_size=256, lr=1e-3, schedule="constant", warmup_epochs=0,
                 qat_policy={"start_epoch": 3, "weight_bits": 8}, recipe="fast")
    assert (given.batch_size, given.lr, given.schedule, given.warmup_epochs) == (256, 1e-3,
                                                                                "constant", 0.0)
    assert given.policy.start_epoch == 3  # a policy of one's own keeps its start
    seed = plan(epochs=15, qat_policy="default")
    assert (seed.batch_size, seed.lr, seed.schedule, seed.policy.start_epoch) == (256, 1e-3,
                                                                                 "seed", 10)
    none = plan(dataset="images", info=None, epochs=3)
    assert (none.batch_size, none.lr, none.optimizer, none.schedule) == (64, 1e-3, "adam", "seed")


def test_the_plan_config_json_records_is_the_plan_resume_reads():
    from ai8x_nb import datasets, models
    from ai8x_nb.training.arguments import check_train_args
    from ai8x_nb.training.plan import RunPlan, resolve_plan

    ds = datasets.load("mnist", limit=8)
    model = models.get_model("mnist")
    for given in ({"epochs": 4}, {"epochs": 6, "recipe": "fast", "qat_policy": "default",
                                  "lr": 5e-4, "metrics": ["accuracy", "ce"], "seed": 7}):
        plan = resolve_plan(check_train_args(**given), "mnist", models.get_info("mnist"),
                            "MAX78000")
        config = json.loads(json.dumps(plan.to_config(ds, {}, model, "mnist")))
        assert RunPlan.from_config(config, plan.epochs) == plan


def test_notebook_settings_none_means_the_recipe_then_the_notebook():
    from ai8x_nb.training.notebook_settings import notebook_settings, settings_text

    short = {"batch_size": 32, "lr": 0.002, "schedule": "cosine"}
    seed = notebook_settings("seed", "mnist", short, batch_size=None, lr=None, schedule=None)
    assert seed == {"batch_size": (32, "notebook"), "lr": (0.002, "notebook"),
                    "schedule": ("cosine", "notebook")}
    fast = notebook_settings("fast", "mnist", short, batch_size=16)
    assert fast == {"batch_size": (16, "parameter"), "lr": (2e-3, "recipe fast"),
                    "schedule": ("cosine", "recipe fast")}
    assert settings_text(fast, recipe="fast") == (
        "batch_size 16 (parameter), lr 0.002 (recipe fast), schedule cosine (recipe fast), "
        "recipe fast")
