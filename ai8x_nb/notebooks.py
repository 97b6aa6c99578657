"""Batch runs of the dataset notebooks with papermill.

`run_notebook` executes one notebook headless into `runs/<timestamp>-<name>.ipynb`;
`run_all` runs several (optionally in parallel worker processes) and never lets one failure
stop the others. Each notebook ends with `record_summary({...})`, which writes a JSON output
the batch reads back from the executed notebook (accuracies, export folder). The notebooks'
parameters and their checks live in `ai8x_nb.parameters`.

Example:

>>> from ai8x_nb.notebooks import run_all, summary_table  # doctest: +SKIP
>>> results = run_all(["mnist", "kws20"], {"epochs": 1}, parallel=2)  # doctest: +SKIP
>>> print(summary_table(results))  # doctest: +SKIP
"""

import concurrent.futures
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path

from ai8x_nb.errors import Ai8xNbError
from ai8x_nb.errors import ParameterError

__all__ = [
    "NOTEBOOKS",
    "SUMMARY_MIME",
    "SUMMARY_ENV",
    "NotebookError",
    "RunResult",
    "notebook_dir",
    "find_notebook",
    "notebook_parameters",
    "parse_value",
    "run_notebook",
    "run_all",
    "format_value",
    "job_commands",
    "summary_table",
    "status_line",
    "record_summary",
    "summary_text",
    "read_summary",
]

logger = logging.getLogger(__name__)

NOTEBOOKS = ("mnist", "fashionmnist", "cifar10", "cifar100", "kws20", "rock")
"""The dataset notebooks, in `run all` order."""

SUMMARY_MIME = "application/vnd.ai8x-nb.summary+json"
"""Mime type of the output `record_summary` writes; the runner reads it back."""

SUMMARY_ENV = "AI8X_NB_SUMMARY"
"""When set, `record_summary` also writes the summary JSON to this path."""

NOTEBOOKS_ENV = "AI8X_NB_NOTEBOOKS"
"""Folder of the dataset notebooks, when not `<repo>/notebooks`."""

KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)
"""Kernel options: no start-up warnings (the kernel runs on localhost for this one run)."""


class NotebookError(Ai8xNbError, ValueError):
    """A notebook that cannot be found or run (the message names it and the fix)."""


@dataclasses.dataclass
class RunResult:
    """Outcome of one notebook run.

    Attributes:
        status: "ok" or "failed".
        output_notebook: the executed notebook (kept on failure too, with the error shown).
        export_dir: the export folder the notebook reported (absolute), or None.
        summary: the dict the notebook passed to `record_summary` ({} when it did not).
        error_cell: execution count ("In [n]") of the failing cell, or None.
        error: "ExceptionName: message" of the failure, or None.
        name: the notebook's name.
        seconds: wall time of the run.
    """

    status: str
    output_notebook: Path
    export_dir: str = None
    summary: dict = dataclasses.field(default_factory=dict)
    error_cell: int = None
    error: str = None
    name: str = ""
    seconds: float = 0.0

    @property
    def ok(self):
        """True when the notebook ran to the end."""
        return self.status == "ok"


# ------------------------------------------------------------- notebooks
def notebook_dir():
    """The folder holding the dataset notebooks.

    `AI8X_NB_NOTEBOOKS` when set, else `<repo>/notebooks` next to the (editable-installed)
    package.
    """
    env = os.environ.get(NOTEBOOKS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[1] / "notebooks"


def find_notebook(name_or_path):
    """Resolve a dataset notebook name ("mnist") or a path to an existing .ipynb file.

    Raises:
        NotebookError: no such notebook.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith(".ipynb") or path.is_file():
        if path.is_file():
            return path.resolve()
        raise NotebookError(f"Notebook file {text!r} does not exist; pass an existing .ipynb "
                            f"path or one of {', '.join(NOTEBOOKS)}.")
    candidate = notebook_dir() / f"{text}.ipynb"
    if candidate.is_file():
        return candidate
    found = sorted(p.stem for p in notebook_dir().glob("*.ipynb"))
    raise NotebookError(
        f"No notebook named {text!r} in {notebook_dir()} (found: {', '.join(found) or 'none'}). "
        f"Pass a dataset name, a path to a .ipynb file, or set {NOTEBOOKS_ENV} to the folder "
        f"holding the notebooks.")


def notebook_parameters(path):
    """The parameters a notebook declares in its `parameters` cell: name -> default text."""
    papermill = _papermill()
    try:
        found = papermill.inspect_notebook(str(path))
    except Exception as err:  # noqa: BLE001 - nbformat raises many kinds for a bad file
        raise NotebookError(f"{str(path)!r} is not a readable Jupyter notebook "
                            f"({type(err).__name__}: {str(err)[:200]}). Pass a .ipynb file "
                            f"or a dataset name ({', '.join(NOTEBOOKS)}).") from err
    return {name: info.get("default") for name, info in found.items()}


def parse_value(text):
    """Parse a `-p NAME VALUE` value as papermill does, plus YAML for lists and dicts.

    "True"/"False"/"None" -> bool/None, ints and floats (1e-3 too) -> numbers, then YAML
    (`[1, 2]`, `{start_epoch: 1}`, `null`), else the text itself.

    Example:

    >>> parse_value("1e-3"), parse_value("None"), parse_value("{start_epoch: 5}")
    (0.001, None, {'start_epoch': 5})
    """
    import yaml

    if not isinstance(text, str):
        return text
    literal = {"True": True, "False": False, "None": None}
    if text in literal:
        return literal[text]
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, bool) and text.lower() not in ("true", "false"):
        return text  # YAML 1.1 reads yes/no/on/off as booleans: keep the word
    return value


def _papermill():
    try:
        import papermill
    except ImportError as err:  # pragma: no cover - papermill is a dependency
        raise NotebookError("Batch runs need papermill: pip install papermill "
                            "(or pip install ai8x-nb).") from err
    return papermill


def _output_path(out_dir, name):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{stamp}-{name}.ipynb"
    k = 2
    while path.exists():
        path = out_dir / f"{stamp}-{name}-{k}.ipynb"
        k += 1
    path.touch()  # claim the name before another worker takes it
    return path


class _LineStream:
    """A file for tqdm off a terminal: each refresh becomes one line (repeats and clears
    dropped), so a log shows one line per finished cell instead of nothing for minutes."""

    def __init__(self, stream):
        self.stream = stream
        self._last = None

    def write(self, text):
        line = text.replace("\r", "\n").strip().splitlines()[-1:] if text.strip() else []
        if line and line[0].strip() and line[0] != self._last:
            self._last = line[0]
            self.stream.write(line[0] + "\n")
            self.stream.flush()

    def flush(self):
        self.stream.flush()


def _progress_bar(name, progress):
    """papermill's `progress_bar` argument: a one-line cell counter on a terminal, one line
    per finished cell otherwise (a CI log), or off."""
    if not progress:
        return False
    stream = sys.stderr
    if not getattr(stream, "isatty", lambda: False)():
        return {"desc": name, "unit": "cell", "leave": False, "file": _LineStream(stream),
                "mininterval": 0, "bar_format": "{desc}: cell {n_fmt}/{total_fmt} done "
                                                "[{elapsed}]"}
    return {"desc": name, "unit": "cell", "leave": False, "file": stream, "dynamic_ncols": True,
            "bar_format": "{desc}: cell {n_fmt}/{total_fmt} {bar} [{elapsed}]"}


def run_notebook(name_or_path, parameters=None, *, out_dir="runs", kernel_name="python3",
                 cwd=None, log_output=False, progress=False):
    """Execute one notebook headless with papermill.

    Args:
        name_or_path: a dataset name ("mnist") or a path to a notebook.
        parameters: dict overriding the `parameters` cell (papermill injects a cell after it);
            a relative `data_folder` is taken relative to the current directory.
        out_dir: folder for the executed notebook `<timestamp>-<name>.ipynb`.
        kernel_name: Jupyter kernel to run it with.
        cwd: working directory of the kernel; default `out_dir` (so relative `export` and
            `logs` folders land next to the executed notebooks).
        log_output: stream the notebook's outputs to the `papermill` logger.
        progress: show a one-line cell counter on stderr while it runs (terminals only; it
            disappears when the notebook ends).

    Returns:
        A `RunResult`; a failing cell gives `status="failed"` with `error_cell` and `error`
        (it does not raise).

    Raises:
        NotebookError: the notebook does not exist.
        ParameterError: a parameter the notebook does not declare.
    """
    papermill = _papermill()
    path = find_notebook(name_or_path)
    name = path.stem
    parameters = dict(parameters or {})
    declared = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ParameterError(
            f"Notebook {name!r} has no parameter(s) {', '.join(unknown)}; its parameters are "
            f"{', '.join(declared)}.")
    if isinstance(parameters.get("data_folder"), (str, os.PathLike)):
        # The kernel runs in `cwd`: a folder given relative to here must stay here.
        parameters["data_folder"] = str(Path(parameters["data_folder"]).expanduser().resolve())
    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    cwd = Path(cwd).expanduser().resolve() if cwd is not None else out_dir
    if not cwd.is_dir():
        raise NotebookError(f"The working folder {str(cwd)!r} (--cwd) does not exist; create "
                            f"it or pass an existing folder.")
    with _notebook_lock(cwd, name):
        return _execute(papermill, path, name, parameters, out_dir, cwd, kernel_name,
                        log_output, progress)


def _notebook_lock(cwd, name):
    """The lock of notebook `name` in the working folder `cwd` (its export/ and logs/ land
    there), taken now; `NotebookError` when another run of it holds it."""
    from ai8x_nb._lock import FolderLock, LockedError

    lock = FolderLock(Path(cwd) / f".run-{name}.lock")
    try:
        return lock.acquire()
    except LockedError as err:
        raise NotebookError(
            f"Notebook {name!r} is already running in {str(cwd)!r} ({err}); a second run would "
            f"overwrite its export/{name} and logs. Wait for it to finish, or pass another "
            f"--out (or --cwd).") from None


def _execute(papermill, path, name, parameters, out_dir, cwd, kernel_name, log_output,
             progress):
    output = _output_path(out_dir, name)
    start = time.monotonic()
    logger.debug("Running %s -> %s", path, output)
    error_cell, error = None, None
    try:
        papermill.execute_notebook(
            str(path), str(output), parameters=parameters, kernel_name=kernel_name,
            cwd=str(cwd), log_output=log_output, progress_bar=_progress_bar(name, progress),
            extra_arguments=list(KERNEL_ARGUMENTS))
    except papermill.PapermillExecutionError as err:
        error_cell, error = err.exec_count, f"{err.ename}: {err.evalue}"
    except Exception as err:  # noqa: BLE001 - kernel death, timeouts: report, don't stop others
        error = f"{type(err).__name__}: {err}"
    seconds = time.monotonic() - start
    if output.stat().st_size:
        static_widget_views(output)
    summary = read_summary(output) if output.stat().st_size else {}
    export_dir = summary.get("export_dir")
    if export_dir:
        export_dir = str((cwd / export_dir).resolve())
    status = "failed" if error else "ok"
    return RunResult(status=status, output_notebook=output, export_dir=export_dir,
                     summary=summary, error_cell=error_cell, error=error, name=name,
                     seconds=seconds)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

STATIC_FORM_BELOW = "ai8x_nb_static_form_below"
"""Output metadata of a widget view whose static form is the next output (the layer editor):
a headless notebook keeps only that static form."""


def static_widget_views(path):
    """Keep only the static form of widget outputs in an executed (headless) notebook.

    A saved notebook has no kernel behind its widgets: a widget view renders as an empty box
    (or a "model not found" error) in JupyterLab and in HTML, hiding the static figure stored
    beside it. Where an output has both, the widget view is dropped; a widget output marked
    `STATIC_FORM_BELOW` (its static form is the next output) is dropped whole. Returns the
    number of outputs changed.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    changed = 0
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data and out.get("metadata", {}).get(STATIC_FORM_BELOW):
                changed += 1  # the next output is this widget's static form
                continue
            if WIDGET_VIEW in data and ("image/png" in data or "text/html" in data):
                del data[WIDGET_VIEW]
                changed += 1
            kept.append(out)
        if "outputs" in cell:
            cell.outputs = kept
    if changed:
        nbformat.write(nb, str(path))
    return changed


def run_all(names=None, parameters=None, parallel=1, *, per_notebook=None, out_dir="runs",
            kernel_name="python3", cwd=None, log_output=False, progress=False,
            on_result=None):
    """Run several notebooks; one failure does not stop the others.

    Args:
        names: notebook names or paths (default: all of `NOTEBOOKS`).
        parameters: parameters passed to every notebook (each must declare them).
        parallel: number of notebooks run at once (separate worker processes).
        per_notebook: {name: {parameter: value}} merged over `parameters` for that notebook
            (e.g. a different `data_dir` for one dataset).
        out_dir, kernel_name, cwd, log_output: as in `run_notebook`.
        progress: a cell counter while each notebook runs (one at a time only; see
            `run_notebook`).
        on_result: called with each `RunResult` as soon as its notebook ends.

    Returns:
        One `RunResult` per notebook, in the order of `names`.

    Raises:
        NotebookError: a name that is not a notebook, or a notebook already running in the
            same working folder (checked before anything runs).
    """
    names = list(names or NOTEBOOKS)
    paths = [find_notebook(name) for name in names]
    for path in paths:  # a file that is no notebook is refused before anything runs
        notebook_parameters(path)
    workdir = Path(cwd if cwd is not None else out_dir).expanduser().resolve()
    if workdir.is_dir():
        for path in paths:  # refuse before anything runs when one is running already
            _notebook_lock(workdir, path.stem).release()
    per_notebook = per_notebook or {}
    params = [{**(parameters or {}), **per_notebook.get(name, per_notebook.get(path.stem, {}))}
              for name, path in zip(names, paths)]
    kwargs = dict(out_dir=out_dir, kernel_name=kernel_name, cwd=cwd, log_output=log_output)
    report = on_result or (lambda result: None)
    if int(parallel) <= 1 or len(paths) == 1:
        results = []
        for path, p in zip(paths, params):
            results.append(_safe_run(path, p, {**kwargs, "progress": progress}))
            report(results[-1])
        return results
    # Worker processes, spawned (not forked): the parent may hold TensorFlow threads.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=int(parallel),
                                                mp_context=context) as pool:
        futures = [pool.submit(_safe_run, path, p, kwargs) for path, p in zip(paths, params)]
        for future in concurrent.futures.as_completed(futures):
            report(future.result())
        return [future.result() for future in futures]


def format_value(value):
    """The `-p NAME VALUE` text that `parse_value` reads back as `value`.

    Example:

    >>> [format_value(v) for v in (1e-3, None, "cosine", "3", {"start_epoch": 1})]
    ['0.001', 'None', 'cosine', '"3"', '{"start_epoch": 1}']
    """
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value if parse_value(value) == value else json.dumps(value)
    return json.dumps(value)


def job_commands(names=None, parameters=None, *, out_dir="runs", kernel_name="python3",
                 program="ai8x-nb"):
    """One `ai8x-nb run` command per notebook, for a job runner to start independently.

    Each command runs one notebook with its parameters into its own folder
    `<out_dir>/<name>` (executed notebook, `logs/`, `export/`), so Slurm array tasks,
    GNU parallel or Kubernetes Jobs can run them anywhere, at once, without sharing files.

    Args:
        names: notebook names or paths (default: all of `NOTEBOOKS`).
        parameters: parameters for every notebook, as `run_all` takes them.
        out_dir: parent of the per-notebook folders.
        kernel_name: Jupyter kernel of each run.
        program: the command that starts the CLI.

    Returns:
        A list of shell command lines, in the order of `names`.

    Raises:
        NotebookError: a name that is not a notebook.
        ParameterError: a parameter a notebook does not declare.

    Example:

    >>> job_commands(["mnist"], {"epochs": 2}, out_dir="jobs")  # doctest: +SKIP
    ['ai8x-nb run mnist -p epochs 2 --out jobs/mnist']
    """
    import shlex

    names = list(names or NOTEBOOKS)
    parameters = dict(parameters or {})
    commands = []
    for name in names:
        path = find_notebook(name)
        unknown = sorted(set(parameters) - set(notebook_parameters(path)))
        if unknown:
            raise ParameterError(
                f"Notebook {path.stem!r} has no parameter(s) {', '.join(unknown)}; its "
                f"parameters are {', '.join(notebook_parameters(path))}.")
        words = [program, "run", name]
        for key, value in parameters.items():
            words += ["-p", key, format_value(value)]
        words += ["--out", os.path.join(os.fspath(out_dir), path.stem)]
        if kernel_name != "python3":
            words += ["--kernel", kernel_name]
        commands.append(shlex.join(words))
    return commands


def status_line(result):
    """One line saying how a notebook run ended: status, time, export folder or error."""
    where = f"notebook {result.output_notebook}" if result.output_notebook else ""
    if result.ok:
        return (f"{result.name}: ok in {result.seconds:.0f} s, export in "
                f"{result.export_dir or '-'}")
    cell = f" at cell In [{result.error_cell}]" if result.error_cell else ""
    return f"{result.name}: FAILED{cell} in {result.seconds:.0f} s: {result.error} {where}".rstrip()


def _safe_run(path, parameters, kwargs):
    try:
        return run_notebook(path, parameters, **kwargs)
    except Ai8xNbError as err:
        return RunResult(status="failed", output_notebook=None, error=str(err),
                         name=Path(path).stem)


def _percent(value):
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "-"
    return f"{100 * value:.2f}"


def _latency(summary):
    value = summary.get("latency_us")
    if value is None:
        return "-"
    return ("~" if summary.get("latency_estimate") else "") + f"{value:,.1f}"


def summary_table(results):
    """A text table of run results: status, accuracies (%), export folder, output notebook.

    `int %` is the MAX78000/MAX78002 integer simulation; `tflite8 %` the int8 TFLite model
    (ESP32-S3) exported from the same weights; `latency us` one inference on the accelerator
    as the synthesis tool estimates it (`check_model`; `~` marks the MAX78002's estimate).
    """
    header = ("notebook", "status", "float %", "fake-q %", "int %", "tflite8 %", "latency us",
              "time", "export / error")
    rows = []
    for r in results:
        s = r.summary or {}
        detail = r.export_dir or "-"
        if not r.ok:
            detail = f"cell In [{r.error_cell}]: {r.error}" if r.error_cell else str(r.error)
        rows.append((r.name, r.status, _percent(s.get("float_accuracy")),
                     _percent(s.get("fake_quant_accuracy")), _percent(s.get("integer_accuracy")),
                     _percent(s.get("tflite_int8_accuracy")), _latency(s), f"{r.seconds:.0f}s",
                     detail))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    widths[-1] = min(widths[-1], 100)
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [str(x) for x in row]
        cells[-1] = cells[-1][:300]
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    for r in results:
        if r.output_notebook is not None:
            lines.append(f"{r.name}: {r.output_notebook}")
    return "\n".join(lines)


# --------------------------------------------------------------- summary
def _json_safe(value):
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item")
                                 else str(o)))


def record_summary(summary):
    """Publish a notebook's result summary for the batch runner (call it in the last cell).

    Displays the summary as JSON output (mime `SUMMARY_MIME`, read back by
    `read_summary`), and writes it to the path in `AI8X_NB_SUMMARY` when that is set.

    Args:
        summary: JSON-able dict, e.g. {"dataset": "mnist", "float_accuracy": 0.98,
            "fake_quant_accuracy": 0.97, "integer_accuracy": 0.97, "export_dir": "..."}.

    Returns:
        The JSON-clean summary dict.
    """
    clean = _json_safe(summary)
    path = os.environ.get(SUMMARY_ENV)
    if path:
        Path(path).write_text(json.dumps(clean, indent=2))
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython ships with the kernel
        return clean
    if get_ipython() is not None:
        display({SUMMARY_MIME: clean, "text/plain": summary_text(clean)}, raw=True)
    return clean


def summary_text(summary):
    """A recorded summary as aligned "name  value" lines: accuracies in %, byte counts with
    thousands separators."""
    width = max((len(key) for key in summary), default=0)
    lines = []
    for key, value in summary.items():
        if key.endswith("accuracy") and isinstance(value, (int, float)):
            shown = f"{100 * value:.2f} %"
        elif key.endswith("bytes") and isinstance(value, int):
            shown = f"{value:,} B"
        else:
            shown = "-" if value is None else str(value)
        lines.append(f"{key:<{width}}  {shown}")
    return "\n".join(lines)


def read_summary(notebook_path):
    """The last summary a notebook recorded with `record_summary` ({} when none)."""
    import nbformat

    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception:  # noqa: BLE001 - a half-written notebook has no summary
        return {}
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if SUMMARY_MIME in data:
                value = data[SUMMARY_MIME]
                found = json.loads(value) if isinstance(value, str) else dict(value)
    return found
