"""What users see: TensorFlow quieted at the source, package messages as output, progress lines."""

import logging
import os

import pytest

from ai8x_nb import console, notebooks
from ai8x_nb.cli import main


def test_filtered_stderr_drops_known_noise_and_keeps_the_rest(capfd):
    with console.filtered_stderr():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n")
        os.write(2, b"I0000 00:00:1796273003.902980    7586 port.cc:153] oneDNN custom "
                    b"operations are on.\n")
        os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8\n")
        os.write(2, b"a real problem\n")
    assert capfd.readouterr().err == "a real problem\n"


def test_tf_quiet_restores_logger_levels_and_filters_warnings():
    import warnings

    tf_logger = logging.getLogger("tensorflow")
    tf_logger.setLevel(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with console.tf_quiet():
            assert tf_logger.level == logging.WARNING
            warnings.warn_explicit("    Warning: tf.lite.Interpreter is deprecated", UserWarning,
                                   "interpreter.py", 1, module="tensorflow.lite.python")
        warnings.warn("kept", UserWarning)
    assert [str(w.message) for w in caught] == ["kept"]
    assert tf_logger.level == logging.DEBUG
    tf_logger.setLevel(logging.NOTSET)


def test_show_messages_prints_package_logs_to_stdout_once(capsys):
    logger = logging.getLogger("ai8x_nb")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    try:
        console.show_messages()
        console.show_messages("INFO")  # idempotent
        logging.getLogger("ai8x_nb.training").info("Run folder: x")
        logging.getLogger("ai8x_nb.training").debug("hidden")
        out = capsys.readouterr()
        assert out.out == "Run folder: x\n" and out.err == ""
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers[:] = saved[2]


def test_notebook_progress_saves_one_line_per_epoch(monkeypatch):
    import IPython.display

    from ai8x_nb.training.progress import NotebookProgress

    shown = []

    class Handle:
        def update(self, data, raw=False):
            shown.append(data["text/plain"])

    def display(data, raw=False, display_id=False):
        shown.append(data["text/plain"])
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    bar = NotebookProgress(epochs=2, steps=3, interval=0.0)
    for epoch in range(2):
        bar.on_epoch_begin(epoch)
        for step in range(3):
            bar.on_train_batch_end(step, {"loss": 1.0 / (step + 1), "accuracy": 0.5})
        bar.on_epoch_end(epoch, {"loss": 0.4, "accuracy": 0.9, "val_loss": 0.5,
                                 "val_accuracy": 0.8, "epoch_time": 1.0,
                                 "learning_rate": 1e-3})
    assert any("[" in s and "2/3" in s for s in shown)  # a moving bar while running
    final = shown[-1].splitlines()
    assert final == ["Epoch 1/2 - 0s - loss 0.4000 - accuracy 0.9000 - val_loss 0.5000 - "
                     "val_accuracy 0.8000"] + [final[1]]
    assert final[1].startswith("Epoch 2/2 - ")
    assert not any(ch in shown[-1] for ch in "\r\b\x1b")


def _outputs(notebook):
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    return [(i, o) for i, cell in enumerate(nb.cells) for o in cell.get("outputs", [])]


@pytest.mark.slow
def test_headless_notebook_has_no_stderr_and_one_line_per_epoch(tmp_path, capfd, mnist_data,
                                                                tiny_notebook):
    cells = [
        "from ai8x_nb.console import setup_notebook\nsetup_notebook()",
        "import keras\nfrom ai8x_nb.training import train",
        f"result = train('mnist', 'mnist', epochs=2, data_dir={str(mnist_data)!r}, "
        f"dataset_kwargs={{'limit': 128}}, batch_size=32, out='logs')",
    ]
    notebook = tiny_notebook(tmp_path / "quiet.ipynb", cells)
    code = main(["run", str(notebook), "--out", str(tmp_path / "runs")])
    printed = capfd.readouterr()
    assert code == 0, printed
    (output,) = (tmp_path / "runs").glob("*-quiet.ipynb")
    outputs = _outputs(output)
    assert [o for _, o in outputs if o.get("name") == "stderr"] == []
    text = [o["data"]["text/plain"] for _, o in outputs if o["output_type"] == "display_data"]
    (progress,) = text
    lines = progress.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert "val_accuracy" in lines[0] and not any(c in progress for c in "\r\b\x1b")
    streams = "".join(o.get("text", "") for _, o in outputs if o.get("name") == "stdout")
    assert "Run folder:" in streams and "Test accuracy" in streams
    # The command printed one status line for the notebook and the table, nothing else.
    lines = printed.out.splitlines()
    assert lines[0].startswith("quiet: ok in ") and "notebook" in lines[2]
    for noise in ("Input Notebook", "Kernel is running over TCP", "absl::InitializeLog",
                  "Executing notebook"):
        assert noise not in printed.out + printed.err


def test_status_line_for_a_failed_notebook(tmp_path, tiny_notebook):
    notebook = tiny_notebook(tmp_path / "bad.ipynb", ["1 / x"], parameters="x = 0")
    (result,) = notebooks.run_all([notebook], out_dir=tmp_path / "runs")
    line = notebooks.status_line(result)
    assert line.startswith("bad: FAILED at cell In [2] in ") and "ZeroDivisionError" in line
    assert str(result.output_notebook) in line
