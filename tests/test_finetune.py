"""Fine-tuning: training starts from a trained (imported or saved) model, head replaced if needed."""

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

from ai8x_nb import layers
from ai8x_nb.models import get_model
from ai8x_nb.quantize import enable_qat, is_qat
from ai8x_nb.training.arguments import TrainingError
from ai8x_nb.zoo.finetune import load_for_fine_tuning, replace_head

from support import set_deterministic_weights

TOOL_DIR = os.environ.get("AI8X_SYNTHESIS_DIR")
TOOL_PYTHON = os.environ.get("AI8X_SYNTHESIS_PYTHON")


def _weights_by_name(model):
    return {l.name: [np.asarray(w) for w in l.get_weights()] for l in model.layers}


def test_replace_head_keeps_the_trunk_and_the_head_settings():
    model = set_deterministic_weights(get_model("mnist"), seed=1)
    enable_qat(model)
    before = _weights_by_name(model)
    new = replace_head(model, 4)
    assert new.outputs[0].shape[-1] == 4 and new.name == model.name
    head = new.layers[-1]
    assert isinstance(head, layers.Dense) and head.wide and head.qat and head.units == 4
    for layer in new.layers[:-1]:  # the trunk: copies with the same weights
        assert all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), before[layer.name]))
    assert is_qat(new)
    x = np.zeros((2, 28, 28), np.float32)
    assert np.asarray(new(x)).shape == (2, 4)


def test_replace_head_of_a_wide_convolution_followed_by_flatten():
    # ressimplenet ends in a wide 1x1 convolution and a Flatten.
    model = get_model("ressimplenet")
    new = replace_head(model, 7)
    assert new.outputs[0].shape[-1] == 7
    assert isinstance(new.layers[-1], keras.layers.Flatten)
    assert new.layers[-2].filters == 7 and new.layers[-2].wide


def test_fixed_output_shift_of_an_imported_head_is_dropped():
    inp = keras.Input((6,))
    head = layers.Dense(5, wide=True, output_shift=1, name="fc")
    model = keras.Model(inp, head(inp))
    new = replace_head(model, 3)
    assert new.layers[-1].output_shift is None and new.layers[-1].units == 3


def test_bad_heads_and_counts_are_refused():
    model = get_model("mnist")
    with pytest.raises(TrainingError, match=r"num_classes=1: a classifier head needs 2"):
        replace_head(model, 1)
    inp = keras.Input((4, 4, 2))
    a = layers.Conv2D(3, 3, padding=1)(inp)
    out = layers.Add(name="add")([a, a])
    with pytest.raises(TrainingError, match=r"not a simple chain \('add'\)"):
        replace_head(keras.Model(inp, out), 3)


def test_load_for_fine_tuning_replaces_the_head_only_when_needed(tmp_path):
    model = set_deterministic_weights(get_model("mnist"), seed=2)
    model.save(tmp_path / "m.keras")
    same = load_for_fine_tuning(tmp_path / "m.keras", num_classes=10)
    assert same.outputs[0].shape[-1] == 10
    assert np.array_equal(same.layers[-1].get_weights()[0], model.layers[-1].get_weights()[0])
    fresh = load_for_fine_tuning(str(tmp_path / "m.keras"), num_classes=10, new_head=True)
    assert not np.array_equal(fresh.layers[-1].get_weights()[0],
                              model.layers[-1].get_weights()[0])
    assert load_for_fine_tuning(str(tmp_path / "m.keras"), 3).outputs[0].shape[-1] == 3
    with pytest.raises(TrainingError, match="built for MAX78000, not MAX78002"):
        load_for_fine_tuning(str(tmp_path / "m.keras"), 10, device="MAX78002")


def test_train_init_from_loads_fits_the_head_and_the_plan_records_it(tmp_path, mnist_data):
    from ai8x_nb.training import train
    from ai8x_nb.training.plan import RunPlan

    model = set_deterministic_weights(get_model("mnist"), seed=3)
    model.save(tmp_path / "m.keras")
    result = train(None, "mnist", epochs=1, init_from=tmp_path / "m.keras", batch_size=8,
                   data_dir=mnist_data, dataset_kwargs={"limit": 16}, out=tmp_path / "logs",
                   verbose=0)
    config = json.loads((result.run_dir.path / "config.json").read_text())
    assert config["init_from"] == str(tmp_path / "m.keras")
    assert RunPlan.from_config(config, 2).init_from == str(tmp_path / "m.keras")
    trained = {layer.name: layer for layer in result.model.layers}
    assert "conv1" in trained and result.model.outputs[0].shape[-1] == 10
    with pytest.raises(TrainingError, match="init_from"):
        train(None, "mnist", epochs=1, init_from=7, out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_cli_refuses_init_from_with_model_and_new_head_alone(tmp_path, capsys, mnist_data):
    from ai8x_nb.cli import main

    get_model("mnist").save(tmp_path / "m.keras")
    code = main(["train", "--dataset", "mnist", "--data-dir", str(mnist_data), "--limit", "20",
                 "--epochs", "1", "--model", "mnist", "--init-from", str(tmp_path / "m.keras"),
                 "--out", str(tmp_path / "logs")])
    assert code == 2 and "pass one of them" in capsys.readouterr().err
    code = main(["train", "--dataset", "mnist", "--data-dir", str(mnist_data), "--limit", "20",
                 "--epochs", "1", "--new-head", "--out", str(tmp_path / "logs")])
    assert code == 2 and "--new-head needs --init-from" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


@pytest.mark.synthesis
@pytest.mark.skipif(not (TOOL_DIR and TOOL_PYTHON),
                    reason="the synthesis tool is not configured: set AI8X_SYNTHESIS_DIR and "
                           "AI8X_SYNTHESIS_PYTHON (../shared/vendor/setup-synthesis.sh)")
def test_vendor_kws20_v3_fine_tuned_from_the_cli_synthesizes(tmp_path, capsys, kws_data):
    # The vendor's trained KWS network, imported, fine-tuned on the keyword clips for one
    # epoch through `ai8x-nb train --init-from`, exported and synthesized: PASS.
    from ai8x_nb.cli import main
    from ai8x_nb.export import Manifest

    tool = Path(TOOL_DIR)
    keras_file = tmp_path / "kws20_v3.keras"
    assert main(["import", str(tool / "trained" / "ai85-kws20_v3-qat8-q.pth.tar"),
                 str(tool / "networks" / "kws20-v3-hwc.yaml"), "--out", str(keras_file)]) == 0
    capsys.readouterr()
    assert main(["train", "--init-from", str(keras_file), "--dataset", "kws20",
                 "--data-dir", str(kws_data), "--dataset-folder", "kws-espeak", "--epochs", "1",
                 "--lr", "1e-4",
                 "--batch-size", "32", "--out", str(tmp_path / "logs")]) == 0
    printed = capsys.readouterr().out
    run_dir = Path(printed.split("run dir: ")[1].splitlines()[0])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dataset"] == "kws20"
    assert (run_dir / "qat_best.keras").is_file()  # it trained as a quantized model
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out), "--targets", "synthesis"]) == 0
    assert main(["synthesize", str(out)]) == 0
    assert "PASS" in capsys.readouterr().out
    manifest = Manifest.load(out)
    assert manifest.synthesis["verdict"] == "PASS"


def test_vendor_catalog_names_files_and_what_is_missing(tmp_path, monkeypatch):
    from ai8x_nb.errors import ZooImportError
    from ai8x_nb.zoo.catalog import VENDOR_NETWORKS, import_vendor, vendor_network

    assert len(VENDOR_NETWORKS) == 8
    with pytest.raises(ZooImportError, match=r"No vendor network 'resnet'; known: mnist, "):
        vendor_network("resnet")
    monkeypatch.delenv("AI8X_SYNTHESIS_DIR", raising=False)
    with pytest.raises(ZooImportError, match="set AI8X_SYNTHESIS_DIR"):
        vendor_network("mnist").paths()
    with pytest.raises(ZooImportError, match="not found in the synthesis folder"):
        vendor_network("mnist").paths(tmp_path)
    if TOOL_DIR:
        for entry in VENDOR_NETWORKS.values():  # the eight files are where the catalog says
            assert all(p.is_file() for p in entry.paths(TOOL_DIR))
        assert all(entry.importable for entry in VENDOR_NETWORKS.values())
        detector = import_vendor("svhn_tinierssd", synthesis_dir=TOOL_DIR)
        assert len(detector.outputs) == 8  # the detector's heads (`output: true`)
